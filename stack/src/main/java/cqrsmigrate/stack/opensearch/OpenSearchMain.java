package cqrsmigrate.stack.opensearch;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.codelibs.opensearch.runner.OpenSearchRunner;
import org.opensearch.common.settings.Settings;

/**
 * Runs one OpenSearch 2.x node in this JVM until the process is told to stop.
 *
 * <p>Settings come from system properties so stack.sh owns every path and port:
 * {@code stack.opensearch.home} (node home, data lives below it),
 * {@code stack.opensearch.host}, {@code stack.opensearch.http.port},
 * {@code stack.opensearch.transport.port}.
 */
public final class OpenSearchMain {

    private static final String NODE_DIR = "node_1";

    // Console only: stack.sh redirects stdout into its own log file, so the runner's
    // default rolling JSON files would only duplicate it.
    private static final String LOG4J2 = String.join("\n",
            "status = error",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n",
            "rootLogger.level = info",
            "rootLogger.appenderRef.console.ref = console",
            "logger.deprecation.name = org.opensearch.deprecation",
            "logger.deprecation.level = error",
            "");

    private OpenSearchMain() {
    }

    public static void main(final String[] args) throws Exception {
        final Path home = Path.of(required("stack.opensearch.home")).toAbsolutePath();
        final String host = System.getProperty("stack.opensearch.host", "127.0.0.1");
        final int httpPort = Integer.getInteger("stack.opensearch.http.port", 9200);
        final int transportPort = Integer.getInteger("stack.opensearch.transport.port", 9300);

        writeLogConfig(home.resolve(NODE_DIR).resolve("config"));

        final OpenSearchRunner runner = new OpenSearchRunner();
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final IOException e) {
                System.err.println("stack: failed to close OpenSearch cleanly: " + e);
            } finally {
                stopped.countDown();
            }
        }, "stack-opensearch-shutdown"));

        runner.onBuild((number, settings) -> {
            settings.put("network.host", host);
            settings.put("http.port", httpPort);
            settings.put("transport.port", transportPort);
            settings.put("discovery.type", "single-node");
            settings.putList("node.roles", "cluster_manager", "data", "ingest");
            // A nearly full disk on a dev box must not turn indices read-only mid-test.
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
        }).build(OpenSearchRunner.newConfigs()
                .basePath(home.toString())
                .numOfNode(1)
                .clusterName("cqrs-stack"));

        runner.ensureYellow();
        // One node can never place a replica, so every new index would stay yellow. As a
        // node setting this default is ignored at index creation; as a persistent cluster
        // setting it is honoured (and kept in the data directory).
        runner.client().admin().cluster().prepareUpdateSettings()
                .setPersistentSettings(Settings.builder().put("cluster.default_number_of_replicas", 0))
                .get();
        System.out.println("stack: opensearch ready on http://" + host + ":" + httpPort);
        stopped.await();
    }

    private static void writeLogConfig(final Path configDir) throws IOException {
        Files.createDirectories(configDir);
        Files.writeString(configDir.resolve("log4j2.properties"), LOG4J2, StandardCharsets.UTF_8);
    }

    private static String required(final String name) {
        final String value = System.getProperty(name);
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException("missing system property -D" + name);
        }
        return value;
    }
}
