package dev.kstreams.peer;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Java peer for the side-by-side benchmarks: runs one of the scenarios S1..S5 with Apache Kafka Streams.
 *
 * <p>Byte formats (the Rust side uses the same):
 * <ul>
 *   <li>input: key = 8-byte big-endian long, value = raw bytes (100 in the benchmarks); event time = record timestamp
 *   <li>S1: filter(value[0] != 0), mapValues(reverse bytes); output Long / bytes
 *   <li>S2: groupByKey().count(store "counts"); output Long / Long (8-byte big-endian)
 *   <li>S3: hopping windows size 1 s, advance 500 ms, no grace; count; output key = 8-byte key ++ 8-byte window
 *       start ms (both big-endian), value = Long
 *   <li>S4: stream leftJoin table (store "table"); output value = stream value ++ first 8 bytes of the table value
 *       (nothing appended when there is no table row)
 *   <li>S5: selectKey(k / 7), repartition "rekey", tumbling windows 10 s, grace 1 h (nothing is late); count;
 *       output as S3
 * </ul>
 *
 * <p>stdout carries exactly two lines: {@code PEER RUNNING} (the first time the client reaches RUNNING) and
 * {@code PEER STOPPED} (after the shutdown hook has closed the client). Logs go to stderr.
 */
public final class Peer {

    private static final Serde<Long> LONG = Serdes.Long();
    private static final Serde<byte[]> BYTES = Serdes.ByteArray();

    /**
     * S5's grace: records reach the repartition topic from several upstream tasks, interleaved in no fixed
     * order, so with no grace the set of records dropped as late would differ from run to run. An hour is far
     * longer than the event-time span of any benchmark input, so nothing is late and the output is exact.
     */
    private static final Duration S5_GRACE = Duration.ofHours(1);

    private static final String USAGE = String.join("\n",
            "usage: Peer --scenario S1|S2|S3|S4|S5 --bootstrap HOST:PORT --app-id ID --input TOPIC --output TOPIC",
            "            [--table TOPIC] --guarantee at_least_once|exactly_once_v2 --commit-ms N",
            "            [--threads N] --state-dir DIR",
            "  --table is required for S4 and ignored otherwise; --threads defaults to 1.");

    private Peer() {}

    /** Bad command line: message and usage on stderr, exit code 2. */
    static final class UsageError extends Exception {
        private static final long serialVersionUID = 1L;

        UsageError(String message) {
            super(message);
        }
    }

    /** Parsed command line. */
    record Args(String scenario, String bootstrap, String appId, String input, String output, String table,
                String guarantee, long commitMs, int threads, String stateDir) {}

    public static void main(String[] argv) {
        // Before anything touches slf4j: simple binding, WARN and above, to stderr.
        setIfAbsent("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        setIfAbsent("org.slf4j.simpleLogger.logFile", "System.err");

        Args args;
        try {
            args = parse(argv);
        } catch (UsageError e) {
            System.err.println("peer-java: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
            return;
        }

        Topology topology = buildTopology(args);
        KafkaStreams streams = new KafkaStreams(topology, config(args));

        AtomicBoolean announcedRunning = new AtomicBoolean(false);
        AtomicBoolean stopping = new AtomicBoolean(false);
        CountDownLatch terminal = new CountDownLatch(1);

        streams.setStateListener((newState, oldState) -> {
            if (newState == KafkaStreams.State.RUNNING && announcedRunning.compareAndSet(false, true)) {
                System.out.println("PEER RUNNING");
                System.out.flush();
            }
            if (newState == KafkaStreams.State.ERROR || newState == KafkaStreams.State.NOT_RUNNING) {
                terminal.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("peer-java: stream thread failed: " + e);
            e.printStackTrace(System.err);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);
            streams.close(Duration.ofSeconds(30));
            System.out.println("PEER STOPPED");
            System.out.flush();
        }, "peer-shutdown"));

        try {
            streams.start();
        } catch (RuntimeException e) {
            System.err.println("peer-java: could not start Kafka Streams: " + e);
            System.exit(1);
            return;
        }

        // Wait until the client stops on its own (ERROR, or NOT_RUNNING after a shutdown request).
        // On SIGTERM the shutdown hook does the closing and the JVM exits when the hook returns.
        try {
            terminal.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (stopping.get()) {
            return; // the shutdown hook owns the exit
        }
        KafkaStreams.State state = streams.state();
        System.err.println("peer-java: Kafka Streams stopped unexpectedly in state " + state);
        // System.exit runs the shutdown hook, which closes the client and prints PEER STOPPED.
        System.exit(1);
    }

    private static void setIfAbsent(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // configuration

    static Properties config(Args a) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.appId());
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.bootstrap());
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, a.threads());
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, a.commitMs());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a.guarantee());
        p.put(StreamsConfig.STATE_DIR_CONFIG, a.stateDir());
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L); // parity: no record cache
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.LongSerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        return p;
    }

    // ---------------------------------------------------------------------------------------------
    // topologies

    static Topology buildTopology(Args a) {
        StreamsBuilder b = new StreamsBuilder();
        KStream<Long, byte[]> input = b.stream(a.input(), Consumed.with(LONG, BYTES));
        switch (a.scenario()) {
            case "S1" -> input
                    .filter((k, v) -> v != null && v.length > 0 && v[0] != 0)
                    .mapValues(Peer::reversed)
                    .to(a.output(), Produced.with(LONG, BYTES));
            case "S2" -> input
                    .groupByKey(Grouped.with(LONG, BYTES))
                    .count(Materialized.<Long, Long, KeyValueStore<Bytes, byte[]>>as("counts")
                            .withKeySerde(LONG)
                            .withValueSerde(LONG)
                            .withLoggingEnabled(Collections.emptyMap())
                            .withCachingDisabled())
                    .toStream()
                    .to(a.output(), Produced.with(LONG, LONG));
            case "S3" -> input
                    .groupByKey(Grouped.with(LONG, BYTES))
                    .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(1))
                            .advanceBy(Duration.ofMillis(500)))
                    .count(Materialized.<Long, Long, WindowStore<Bytes, byte[]>>with(LONG, LONG)
                            .withCachingDisabled())
                    .toStream()
                    .map((wk, count) -> KeyValue.pair(windowedKey(wk), count))
                    .to(a.output(), Produced.with(BYTES, LONG));
            case "S4" -> {
                KTable<Long, byte[]> table = b.table(a.table(), Consumed.with(LONG, BYTES),
                        Materialized.<Long, byte[], KeyValueStore<Bytes, byte[]>>as("table")
                                .withKeySerde(LONG)
                                .withValueSerde(BYTES)
                                .withCachingDisabled());
                input
                        .leftJoin(table, Peer::joinValue, Joined.with(LONG, BYTES, BYTES))
                        .to(a.output(), Produced.with(LONG, BYTES));
            }
            case "S5" -> input
                    .selectKey((k, v) -> k == null ? null : k / 7)
                    .repartition(Repartitioned.with(LONG, BYTES).withName("rekey"))
                    .groupByKey(Grouped.with(LONG, BYTES))
                    .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), S5_GRACE))
                    .count(Materialized.<Long, Long, WindowStore<Bytes, byte[]>>with(LONG, LONG)
                            .withCachingDisabled())
                    .toStream()
                    .map((wk, count) -> KeyValue.pair(windowedKey(wk), count))
                    .to(a.output(), Produced.with(BYTES, LONG));
            default -> throw new IllegalStateException("unknown scenario " + a.scenario());
        }
        return b.build();
    }

    /** S1: the value with its bytes in reverse order. */
    static byte[] reversed(byte[] v) {
        if (v == null) {
            return null;
        }
        byte[] out = new byte[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[v.length - 1 - i];
        }
        return out;
    }

    /** S4: stream value followed by the first 8 bytes of the table value (nothing when there is no row). */
    static byte[] joinValue(byte[] v, byte[] t) {
        byte[] left = v == null ? new byte[0] : v;
        int n = t == null ? 0 : Math.min(8, t.length);
        byte[] out = Arrays.copyOf(left, left.length + n);
        if (n > 0) {
            System.arraycopy(t, 0, out, left.length, n);
        }
        return out;
    }

    /** S3/S5: 16 bytes = 8-byte big-endian key ++ 8-byte big-endian window start (ms). */
    static byte[] windowedKey(Windowed<Long> wk) {
        return ByteBuffer.allocate(16).putLong(wk.key()).putLong(wk.window().start()).array();
    }

    // ---------------------------------------------------------------------------------------------
    // command line

    static Args parse(String[] argv) throws UsageError {
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String flag = argv[i];
            if (flag.equals("-h") || flag.equals("--help")) {
                System.out.println(USAGE);
                System.exit(0);
            }
            switch (flag) {
                case "--scenario", "--bootstrap", "--app-id", "--input", "--output", "--table", "--guarantee",
                        "--commit-ms", "--threads", "--state-dir" -> {
                    if (i + 1 >= argv.length) {
                        throw new UsageError(flag + " needs a value");
                    }
                    String value = argv[++i];
                    if (value.isEmpty()) {
                        throw new UsageError(flag + " must not be empty");
                    }
                    if (opts.put(flag, value) != null) {
                        throw new UsageError(flag + " given twice");
                    }
                }
                default -> throw new UsageError("unknown argument: " + flag);
            }
        }

        String scenario = required(opts, "--scenario").toUpperCase(Locale.ROOT);
        if (!scenario.matches("S[1-5]")) {
            throw new UsageError("--scenario must be one of S1, S2, S3, S4, S5 (got " + opts.get("--scenario") + ")");
        }
        String guarantee = required(opts, "--guarantee");
        if (!guarantee.equals(StreamsConfig.AT_LEAST_ONCE) && !guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2)) {
            throw new UsageError("--guarantee must be at_least_once or exactly_once_v2 (got " + guarantee + ")");
        }
        String table = opts.get("--table");
        if (scenario.equals("S4") && table == null) {
            throw new UsageError("S4 needs --table TOPIC");
        }
        long commitMs = number("--commit-ms", required(opts, "--commit-ms"), 0, Long.MAX_VALUE);
        int threads = (int) number("--threads", opts.getOrDefault("--threads", "1"), 1, 1024);

        return new Args(scenario,
                required(opts, "--bootstrap"),
                required(opts, "--app-id"),
                required(opts, "--input"),
                required(opts, "--output"),
                table,
                guarantee,
                commitMs,
                threads,
                required(opts, "--state-dir"));
    }

    private static String required(Map<String, String> opts, String flag) throws UsageError {
        String v = opts.get(flag);
        if (v == null) {
            throw new UsageError("missing " + flag);
        }
        return v;
    }

    private static long number(String flag, String text, long min, long max)
            throws UsageError {
        long n;
        try {
            n = Long.parseLong(text);
        } catch (NumberFormatException e) {
            throw new UsageError(flag + " must be an integer (got " + text + ")");
        }
        if (n < min || n > max) {
            throw new UsageError(flag + " must be between " + min + " and " + max + " (got " + n + ")");
        }
        return n;
    }
}
