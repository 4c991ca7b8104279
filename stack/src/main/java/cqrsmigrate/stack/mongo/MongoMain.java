package cqrsmigrate.stack.mongo;

import java.util.List;
import java.util.concurrent.CountDownLatch;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

/**
 * Serves the MongoDB wire protocol from memory until the process is told to stop.
 *
 * <p>It is a stand-in for contract tests: data does not survive a restart.
 * System properties: {@code stack.mongo.host}, {@code stack.mongo.port}.
 */
public final class MongoMain {

    /**
     * Node's mongodb driver 6.10+ refuses servers below wire version 9 (MongoDB 4.4), and
     * the newest version mongo-java-server names itself (MONGO_5_0) reports wire version 8.
     * The version is only reported, never used to switch features, so we advertise the
     * lowest one the driver accepts: the driver then avoids newer protocol features.
     */
    private static final MongoVersion ADVERTISED_VERSION = new MongoVersion() {
        @Override
        public List<Integer> getVersionArray() {
            return List.of(4, 4, 0);
        }

        @Override
        public int getWireVersion() {
            return 9;
        }
    };

    private MongoMain() {
    }

    public static void main(final String[] args) throws InterruptedException {
        final String host = System.getProperty("stack.mongo.host", "127.0.0.1");
        final int port = Integer.getInteger("stack.mongo.port", 27017);

        final MongoServer server = new MongoServer(new MemoryBackend().version(ADVERTISED_VERSION));
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdown();
            stopped.countDown();
        }, "stack-mongo-shutdown"));

        server.bind(host, port);
        System.out.println("stack: mongo ready on mongodb://" + host + ":" + port);
        stopped.await();
    }
}
