//! The chart: monthly sales and the forecasts made for them, one panel per top product (SVG).

use std::path::Path;

use plotters::prelude::*;

use crate::calendar::Month;
use crate::hub::Outputs;
use crate::report::top_products;

/// Draws the top `count` products' monthly units (line) and the forecast made for each month
/// (dashed line with markers, up to next month) into an SVG file at `path`.
pub fn draw(outputs: &Outputs, count: usize, path: &Path) -> Result<(), String> {
    let skus = top_products(outputs, count);
    if skus.is_empty() {
        return Err("no monthly sales to draw".into());
    }
    let mut months: Vec<Month> = outputs.monthly.keys().map(|(_, m)| *m).collect();
    months.sort();
    months.dedup();
    let first = months[0];
    let last = months.last().copied().unwrap_or(first).next();
    let x = |m: Month| first.months_until(m) as f64;
    let columns = 2;
    let rows = skus.len().div_ceil(columns);
    let root = SVGBackend::new(path, (1200, 380 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((rows, columns));
    for (sku, panel) in skus.iter().zip(panels.iter()) {
        let actual: Vec<(f64, f64)> = months
            .iter()
            .filter_map(|m| outputs.monthly.get(&(sku.clone(), *m)).map(|s| (x(*m), s.units as f64)))
            .collect();
        let forecast: Vec<(f64, f64)> =
            outputs.forecasts.get(sku).map(|f| f.iter().map(|f| (x(f.month), f.units)).collect()).unwrap_or_default();
        let top = actual.iter().chain(&forecast).map(|(_, y)| *y).fold(1.0, f64::max) * 1.1;
        let name = outputs.forecasts.get(sku).and_then(|f| f.last()).map(|f| f.name.clone()).unwrap_or_default();
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{sku} {name}"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..x(last) + 0.5, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(months.len().min(12))
            .x_label_formatter(&|v| Month::new(first.year(), first.month() + v.round().max(0.0) as u32).to_string())
            .y_desc("units")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(actual.clone(), BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label("sold")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(DashedLineSeries::new(forecast.clone(), 6, 4, RED.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label("forecast")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_series(forecast.iter().map(|(x, y)| Circle::new((*x, *y), 3, RED.filled())))
            .map_err(|e| e.to_string())?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
