// The Kafka Streams baseline of `fl-router-tools bench --baseline kstreams`: the router's hop
// as a plain Kafka Streams application with default settings. A command goes to the read topic
// of the FL whose switch its bytes name after `"switch_id":"` (a byte scan and one map lookup,
// no JSON parsing, like `pipe --lean`), through `to(TopicNameExtractor)`; everything the FLs
// write goes to the reply topic. Keys and headers pass through as Kafka Streams passes them.
//
//   java -cp <classes>:<lib>/* Route --brokers B --app-id A --state-dir D --commands T[,T]
//        --fl-write W[,W] --reply R --routes FILE --default TOPIC [--set key=value]...
// FILE: one `switch<TAB>topic` per line; `--set`: a Streams or client setting over the
// defaults (e.g. `producer.linger.ms=1`). Stops on SIGTERM (closes the streams first).

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.KStream;

public final class Route {
    private static final byte[] NEEDLE = "\"switch_id\":\"".getBytes(StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        Map<String, String> o = new HashMap<>();
        Properties extra = new Properties();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (args[i].equals("--set")) {
                String[] kv = args[i + 1].split("=", 2);
                extra.put(kv[0], kv.length == 2 ? kv[1] : "");
            } else {
                o.put(args[i], args[i + 1]);
            }
        }
        for (String k : new String[] {"--brokers", "--app-id", "--state-dir", "--commands",
                "--fl-write", "--reply", "--routes", "--default"}) {
            if (!o.containsKey(k)) {
                System.err.println("Route: missing " + k);
                System.exit(2);
            }
        }
        Map<String, String> table = new HashMap<>();
        for (String line : Files.readAllLines(Paths.get(o.get("--routes")))) {
            String[] p = line.split("\t");
            if (p.length == 2) {
                table.put(p[0], p[1]);
            }
        }
        String fallback = o.get("--default");

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, o.get("--app-id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.get("--brokers"));
        p.put(StreamsConfig.STATE_DIR_CONFIG, o.get("--state-dir"));
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
        p.putAll(extra);

        StreamsBuilder b = new StreamsBuilder();
        KStream<byte[], byte[]> commands = b.stream(Arrays.asList(o.get("--commands").split(",")));
        commands.to((key, value, ctx) -> route(value, table, fallback));
        KStream<byte[], byte[]> answers = b.stream(Arrays.asList(o.get("--fl-write").split(",")));
        answers.to(o.get("--reply"));

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(10));
            stopped.countDown();
        }));
        streams.start();
        System.err.println("Route: started, " + table.size() + " switches, settings over the defaults: " + extra);
        stopped.await();
    }

    /** The FL read topic of the switch named after `"switch_id":"`, or the fallback. */
    static String route(byte[] v, Map<String, String> table, String fallback) {
        if (v == null) {
            return fallback;
        }
        int at = indexOf(v, NEEDLE, 0);
        if (at < 0) {
            return fallback;
        }
        int start = at + NEEDLE.length;
        int end = start;
        while (end < v.length && v[end] != '"') {
            end++;
        }
        if (end == v.length) {
            return fallback;
        }
        String t = table.get(new String(v, start, end - start, StandardCharsets.ISO_8859_1));
        return t == null ? fallback : t;
    }

    static int indexOf(byte[] hay, byte[] needle, int from) {
        outer:
        for (int i = from; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
