package dev.kstreams.peer;

import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.test.TestRecord;

/**
 * The Kafka Streams side of kstreams' differential tests ({@code tests/differential.rs}): runs named topologies
 * in Kafka Streams' own {@code TopologyTestDriver} over a script and prints every output record, so that the
 * Rust twin's output can be compared record by record.
 *
 * <p>Script (stdin, tab-separated, one command per line):
 * <ul>
 *   <li>{@code case NAME TOPOLOGY} starts a case: a fresh driver over the named topology;
 *   <li>{@code in TOPIC KEY VALUE TIMESTAMP} pipes one record ({@code ~} is a null value);
 *   <li>{@code end} closes the case's driver.
 * </ul>
 * After each {@code in} line, every record the topology wrote to its output topics is printed as
 * {@code out INDEX TOPIC KEY VALUE TIMESTAMP} (INDEX = the input's position in the case, from 0; output topics in
 * name order, records in the order written). {@code case} and {@code end} lines are echoed.
 *
 * <p>Every topology reads and writes strings; windowed keys are written as {@code key@start/end}. Caches are
 * off ({@code statestore.cache.max.bytes=0}), so every update is forwarded, as kstreams does without caching; outer
 * stream-stream joins look for closed windows on every record (kstreams has no wall-clock throttle for it).
 * The Rust twins of these topologies are in {@code tests/differential/topologies.rs}: change both together.
 */
public final class Differential {

    private static final Serde<String> S = Serdes.String();
    private static final String NULL = "~";

    private Differential() {}

    /** A topology and the topics it writes. */
    private record Spec(Topology topology, List<String> outputs) {}

    /** The number at the start of {@code v} (values are decimal numbers, possibly with suffixes). */
    static long num(String v) {
        if (v == null) {
            return 0;
        }
        int end = 0;
        while (end < v.length() && (Character.isDigit(v.charAt(end)) || (end == 0 && v.charAt(end) == '-'))) {
            end++;
        }
        return end == 0 ? 0 : Long.parseLong(v.substring(0, end));
    }

    static String str(Object v) {
        return v == null ? null : v.toString();
    }

    static String opt(String v) {
        return v == null ? "_" : v;
    }

    /** The foreign key in a value {@code fkey|payload}. */
    static String fk(String v) {
        int bar = v.indexOf('|');
        return bar < 0 ? v : v.substring(0, bar);
    }

    static String windowed(Windowed<String> w) {
        return w.key() + "@" + w.window().start() + "/" + w.window().end();
    }

    static <V> void windowedOut(KTable<Windowed<String>, V> table) {
        table.toStream().map((w, v) -> KeyValue.pair(windowed(w), str(v))).to("out", Produced.with(S, S));
    }

    static <V> void out(KTable<String, V> table) {
        table.toStream().mapValues(Differential::str).to("out", Produced.with(S, S));
    }

    private static Spec build(String name) {
        StreamsBuilder b = new StreamsBuilder();
        List<String> outputs = List.of("out");
        Consumed<String, String> c = Consumed.with(S, S);
        Duration ms10 = Duration.ofMillis(10);
        JoinWindows joinWindows = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofMillis(5), Duration.ofMillis(3));
        StreamJoined<String, String, String> sj = StreamJoined.with(S, S, S);
        switch (name) {
            case "stateless" -> {
                KStream<String, String> in = b.stream("in", c);
                KStream<String, String> shaped = in
                        .filter((k, v) -> num(v) % 3 != 0)
                        .mapValues(v -> v + "!")
                        .flatMap((k, v) -> List.of(KeyValue.pair(k, v), KeyValue.pair(k + "x", v + v.length())))
                        .selectKey((k, v) -> k + "/" + (num(v) % 4));
                shaped.split(Named.as("split-"))
                        .branch((k, v) -> num(v) % 2 == 0, Branched.withConsumer(s -> s.to("out-even", Produced.with(S, S))))
                        .defaultBranch(Branched.withConsumer(s -> s.to("out-odd", Produced.with(S, S))));
                in.merge(b.stream("in2", c)).mapValues((k, v) -> k + ":" + v).to("out-merged", Produced.with(S, S));
                outputs = List.of("out-even", "out-merged", "out-odd");
            }
            case "count" -> out(b.stream("in", c).groupByKey().count());
            case "reduce" -> out(b.stream("in", c).groupByKey()
                    .reduce((a, v) -> String.valueOf(Math.max(num(a), num(v)))));
            case "aggregate" -> out(b.stream("in", c).groupByKey()
                    .aggregate(() -> "0", (k, v, a) -> String.valueOf(num(a) + num(v)), Materialized.with(S, S)));
            case "regroup-count" -> out(b.stream("in", c).groupBy((k, v) -> "g" + (num(v) % 3), Grouped.with(S, S))
                    .count());
            case "tumbling" -> windowedOut(grouped(b).windowedBy(TimeWindows.ofSizeAndGrace(ms10, Duration.ofMillis(5)))
                    .count());
            case "tumbling-reduce" -> windowedOut(grouped(b)
                    .windowedBy(TimeWindows.ofSizeAndGrace(ms10, Duration.ofMillis(5)))
                    .reduce((a, v) -> String.valueOf(Math.max(num(a), num(v)))));
            case "hopping" -> windowedOut(grouped(b)
                    .windowedBy(TimeWindows.ofSizeAndGrace(ms10, Duration.ofMillis(4)).advanceBy(Duration.ofMillis(3)))
                    .count());
            case "sliding" -> windowedOut(grouped(b)
                    .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms10, Duration.ofMillis(5)))
                    .aggregate(() -> "0", (k, v, a) -> String.valueOf(num(a) + num(v)), Materialized.with(S, S)));
            case "session" -> windowedOut(grouped(b)
                    .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis(5), Duration.ofMillis(2)))
                    .count());
            case "session-reduce" -> windowedOut(grouped(b)
                    .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofMillis(5), Duration.ofMillis(2)))
                    .reduce((a, v) -> a + "," + v));
            case "suppress" -> windowedOut(grouped(b).windowedBy(TimeWindows.ofSizeAndGrace(ms10, Duration.ofMillis(5)))
                    .count()
                    .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded())));
            case "ss-inner" -> b.stream("in", c)
                    .join(b.stream("in2", c), (l, r) -> l + "+" + r, joinWindows, sj)
                    .to("out", Produced.with(S, S));
            case "ss-left" -> b.stream("in", c)
                    .leftJoin(b.stream("in2", c), (l, r) -> l + "+" + opt(r), joinWindows, sj)
                    .to("out", Produced.with(S, S));
            case "ss-outer" -> b.stream("in", c)
                    .outerJoin(b.stream("in2", c), (l, r) -> opt(l) + "+" + opt(r), joinWindows, sj)
                    .to("out", Produced.with(S, S));
            case "st-inner" -> b.stream("in", c).join(b.table("tbl", c), (l, r) -> l + "+" + r)
                    .to("out", Produced.with(S, S));
            case "st-left" -> b.stream("in", c).leftJoin(b.table("tbl", c), (l, r) -> l + "+" + opt(r))
                    .to("out", Produced.with(S, S));
            case "tt-inner" -> out(b.table("t1", c).join(b.table("t2", c), (l, r) -> l + "+" + r));
            case "tt-left" -> out(b.table("t1", c).leftJoin(b.table("t2", c), (l, r) -> l + "+" + opt(r)));
            case "tt-outer" -> out(b.table("t1", c).outerJoin(b.table("t2", c), (l, r) -> opt(l) + "+" + opt(r)));
            case "fk-inner" -> out(b.table("t1", c).join(b.table("t2", c), Differential::fk, (l, r) -> l + "+" + r));
            case "fk-left" -> out(b.table("t1", c)
                    .leftJoin(b.table("t2", c), Differential::fk, (l, r) -> l + "+" + opt(r)));
            case "global-inner" -> {
                GlobalKTable<String, String> g = b.globalTable("glob", c);
                b.stream("in", c).join(g, (k, v) -> fk(v), (l, r) -> l + "+" + r).to("out", Produced.with(S, S));
            }
            case "global-left" -> {
                GlobalKTable<String, String> g = b.globalTable("glob", c);
                b.stream("in", c).leftJoin(g, (k, v) -> fk(v), (l, r) -> l + "+" + opt(r))
                        .to("out", Produced.with(S, S));
            }
            case "table-map-values" -> out(b.table("t1", c).mapValues(v -> v + "!"));
            case "table-count" -> out(b.table("t1", c).groupBy((k, v) -> KeyValue.pair(fk(v), k), Grouped.with(S, S))
                    .count());
            case "table-aggregate" -> out(b.table("t1", c).groupBy((k, v) -> KeyValue.pair(fk(v), v), Grouped.with(S, S))
                    .aggregate(() -> "0",
                            (k, v, a) -> String.valueOf(num(a) + num(v.substring(v.indexOf('|') + 1))),
                            (k, v, a) -> String.valueOf(num(a) - num(v.substring(v.indexOf('|') + 1))),
                            Materialized.with(S, S)));
            default -> throw new IllegalArgumentException("no topology named " + name);
        }
        return new Spec(b.build(), outputs);
    }

    private static KGroupedStream<String, String> grouped(StreamsBuilder b) {
        return b.stream("in", Consumed.with(S, S)).groupByKey();
    }

    private static String field(String s) {
        return s == null ? NULL : s;
    }

    public static void main(String[] args) throws IOException {
        Path stateRoot = Files.createTempDirectory("kstreams-differential");
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        TopologyTestDriver driver = null;
        Map<String, TestInputTopic<String, String>> inputs = new HashMap<>();
        Map<String, TestOutputTopic<String, String>> outputs = new TreeMap<>();
        int index = 0;
        int cases = 0;
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            switch (f[0]) {
                case "case" -> {
                    if (driver != null) {
                        throw new IllegalStateException("case without end: " + line);
                    }
                    Spec spec = build(f[2]);
                    Properties props = new Properties();
                    props.put(StreamsConfig.APPLICATION_ID_CONFIG, "differential");
                    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:1");
                    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
                    props.put(StreamsConfig.STATE_DIR_CONFIG, stateRoot.resolve("case-" + cases++).toString());
                    props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
                    props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
                    // Outer stream-stream joins look for closed windows at most once per wall-clock second
                    // (a throttle, not semantics); the driver's wall clock stands still, so look every time,
                    // as kstreams does.
                    props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX, 0L);
                    driver = new TopologyTestDriver(spec.topology(), props, Instant.EPOCH);
                    inputs.clear();
                    outputs.clear();
                    for (String topic : spec.outputs()) {
                        outputs.put(topic, driver.createOutputTopic(topic, S.deserializer(), S.deserializer()));
                    }
                    index = 0;
                    out.println(line);
                }
                case "in" -> {
                    if (driver == null) {
                        throw new IllegalStateException("input outside a case: " + line);
                    }
                    TopologyTestDriver d = driver;
                    TestInputTopic<String, String> topic =
                            inputs.computeIfAbsent(f[1], t -> d.createInputTopic(t, S.serializer(), S.serializer()));
                    String value = NULL.equals(f[3]) ? null : f[3];
                    topic.pipeInput(new TestRecord<>(f[2], value, Instant.ofEpochMilli(Long.parseLong(f[4]))));
                    for (Map.Entry<String, TestOutputTopic<String, String>> o : outputs.entrySet()) {
                        List<TestRecord<String, String>> records = new ArrayList<>(o.getValue().readRecordsToList());
                        for (TestRecord<String, String> r : records) {
                            out.println(String.join("\t", "out", String.valueOf(index), o.getKey(), field(r.key()),
                                    field(r.value()), String.valueOf(r.timestamp())));
                        }
                    }
                    index++;
                }
                case "end" -> {
                    if (driver != null) {
                        driver.close();
                        driver = null;
                    }
                    out.println("end");
                }
                default -> throw new IllegalArgumentException("unknown command: " + line);
            }
        }
        if (driver != null) {
            driver.close();
        }
        out.flush();
    }
}
