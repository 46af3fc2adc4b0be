import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.AbstractUniqueIndex;
import de.bwaldvogel.mongo.backend.EmptyIndex;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import de.bwaldvogel.mongo.wire.message.MongoQuery;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Map.Entry;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.WriteBuffer;
import org.h2.mvstore.type.ObjectDataType;

/**
 * The local MongoDB-wire database: mongo-java-server on an H2 MVStore file.
 *
 * <pre>java -cp 'lib/*:classes' MongoLauncher HOST PORT FILE</pre>
 *
 * What the launcher adds to the library:
 * <ul>
 * <li>a command that may write is answered only once its changes are committed to the
 *     file, and a commit never takes a command's changes half-made, so an acknowledged write survives a SIGKILL of this process (the library
 *     leaves that to the MVStore's background commit, once a second); concurrent
 *     writers share one commit;</li>
 * <li>it reports MongoDB 5.0 with wire version 13 (the library says 8; PyMongo needs 9 or more);</li>
 * <li>a filter naming {@code _id} together with other conditions (a conditional update such as
 *     {@code {_id: k, v: 3}}) finds its document through the {@code _id} index, as MongoDB does;
 *     the library uses an index only for a filter of exactly its keys and scans the
 *     collection otherwise; and the documents the index found are not matched against the
 *     {@code _id} condition again (an {@code $in} list of n ids cost n x n comparisons);</li>
 * <li>documents and index keys are stored as BSON, not Java-serialised (see {@link Bson}),
 *     and the page cache is {@code -Dmvstore.cacheMiB} (H2's default 16 MiB);</li>
 * <li>space of replaced chunks is reused after 10 s, chunks under half full are rewritten,
 *     2 MiB every 5 s, and the file is compacted on close (the MVStore thread that would do
 *     some of this is off together with its autocommit);</li>
 * <li>SIGTERM stops listening, lets running commands finish and closes the file.</li>
 * </ul>
 */
public final class MongoLauncher {
    private static final MongoVersion MONGO_5_0 = new MongoVersion() {
        @Override public List<Integer> getVersionArray() { return List.of(5, 0, 0); }
        @Override public int getWireVersion() { return 13; }
    };
    /** Commands that never change data: answered without waiting for a commit. */
    private static final Set<String> READS = Set.of(
            "find", "getmore", "count", "distinct", "aggregate", "killcursors", "listcollections",
            "listindexes", "listdatabases", "ismaster", "hello", "ping", "buildinfo", "serverstatus",
            "dbstats", "collstats", "getlasterror", "getparameter", "whatsmyuri", "endsessions",
            "saslstart", "saslcontinue", "connectionstatus", "hostinfo", "getcmdlineopts", "currentop");
    private static final int RETENTION_MILLIS = 10_000;
    private static final String ORDERED = "#bson-order";
    private static final int COMPACT_EVERY_SECONDS = 5;
    // A compaction holds the store's commits: rewriting 16 MiB of chunks under 80 % full
    // stalled every write for 1.2-1.4 s every 6 s under load; 2 MiB of chunks under half
    // full keeps a pause short and the file under about twice its live data.
    private static final int COMPACT_BELOW_FILL_PERCENT = 50;
    private static final int COMPACT_WRITE_BYTES = 2 << 20;
    private static final int CLOSE_COMPACTION_MILLIS = 10_000;

    /**
     * Commands that change data hold this shared while they run; a commit or a compaction
     * holds it exclusively, so what reaches the file is always whole commands. A commit in
     * the middle of an insert once put a document in the file without its {@code _id} index
     * entry: after a SIGKILL the retried insert failed "Document with key … already existed".
     */
    static final ReentrantReadWriteLock COMMANDS = new ReentrantReadWriteLock();

    /** One commit at a time; whoever waits while one runs is covered by the next one. */
    static final class GroupCommit {
        private final MVStore store;
        private long requested;
        private long committed;
        private boolean running;

        GroupCommit(MVStore store) { this.store = store; }

        /** Returns once every change made before the call is in the file. */
        void await() {
            long upTo;
            synchronized (this) {
                long ticket = ++requested;
                while (running && committed < ticket) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                if (committed >= ticket) return;
                running = true;
                upTo = requested;
            }
            COMMANDS.writeLock().lock();
            try {
                store.commit();
            } finally {
                COMMANDS.writeLock().unlock();
                synchronized (this) {
                    running = false;
                    committed = Math.max(committed, upTo);
                    notifyAll();
                }
            }
        }
    }

    /** H2Collection that looks documents up by {@code _id} whenever the filter names one. */
    static final class IdIndexedCollection extends H2Collection {
        IdIndexedCollection(MongoDatabase database, String name, CollectionOptions options,
                            MVMap<Object, Document> dataMap, MVMap<String, Object> metaMap, CursorRegistry cursors) {
            super(database, name, options, dataMap, metaMap, cursors);
        }

        /**
         * The candidates by {@code _id}, then the rest of the filter on each. The index
         * finds exactly the documents the {@code _id} condition names (a value, an
         * {@code $in} list or a regular expression), so that condition is not matched
         * again: the library matched every candidate against the whole {@code $in} list,
         * n x n comparisons for a batch's {@code {_id: {$in: [n ids]}}}.
         */
        @Override protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit,
                                                       int batchSize, Document fieldSelector) {
            if (query.containsKey("_id")) {
                Document byId = new Document("_id", query.get("_id"));
                for (Index<Object> index : getIndexes()) {
                    if (index.canHandle(byId)) {
                        Document rest = new Document(query);
                        rest.remove("_id");
                        return matchDocuments(rest, index.getPositions(byId), orderBy, skip, limit, batchSize, fieldSelector);
                    }
                }
            }
            return super.queryDocuments(query, orderBy, skip, limit, batchSize, fieldSelector);
        }
    }

    /**
     * Documents and index keys stored as BSON, where H2's ObjectDataType Java-serialises
     * them: every commit re-serialised each changed page whole (a class descriptor per
     * value), and every page read from the file deserialised it again. Under the
     * bench's 100/s mix that was most of the engine's CPU in JFR samples
     * ({@code ObjectInputStream.readObject} under {@code Page$Leaf.readPayLoad},
     * {@code ObjectOutputStream} under {@code MVStore.commit}).
     * A BSON value starts with a tag ObjectDataType never writes, so a file written
     * before reads on: its Java-serialised values are read as before and rewritten as
     * BSON with the next change to their page. A value BSON cannot carry (an
     * internal marker such as {@code Missing}) stays Java-serialised.
     */
    static final class Bson {
        static final byte TAG = 127;  // ObjectDataType's tags end at 119

        static boolean isTagged(ByteBuffer buff) { return buff.get(buff.position()) == TAG; }

        /** Writes the tag and the document, or nothing if BSON cannot carry one of its values. */
        static boolean write(WriteBuffer buff, Map<String, ?> document) {
            ByteBuf encoded = Unpooled.buffer(256);
            try {
                BsonEncoder.encodeDocument(document, encoded);
                buff.put(TAG).put(encoded.nioBuffer());
                return true;
            } catch (IllegalArgumentException notBson) {
                return false;
            } finally {
                encoded.release();
            }
        }

        static Document read(ByteBuffer buff) {
            buff.get();  // the tag
            int length = Integer.reverseBytes(buff.getInt(buff.position()));  // BSON's int32 is little-endian
            ByteBuffer bson = buff.slice();
            bson.limit(length);
            buff.position(buff.position() + length);
            return BsonDecoder.decodeBson(Unpooled.wrappedBuffer(bson));
        }

        /** A rough heap size, for the page cache's accounting (ObjectDataType guesses one average for all). */
        static int heapSize(Object value) {
            if (value instanceof Map) {
                int size = 64;
                for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                    size += 48 + heapSize(entry.getKey()) + heapSize(entry.getValue());
                }
                return size;
            }
            if (value instanceof Iterable) {  // a list, or an index key's values
                int size = 40;
                for (Object element : (Iterable<?>) value) size += 8 + heapSize(element);
                return size;
            }
            if (value instanceof String) return 48 + 2 * ((String) value).length();
            if (value instanceof byte[]) return 16 + ((byte[]) value).length;
            return 24;
        }
    }

    /** Collection data: documents by {@code _id}, the documents as BSON. */
    static final class DocumentType extends ObjectDataType {
        @Override public void write(WriteBuffer buff, Object value) {
            if (!(value instanceof Document && Bson.write(buff, (Document) value))) super.write(buff, value);
        }

        @Override public Object read(ByteBuffer buff) { return Bson.isTagged(buff) ? Bson.read(buff) : super.read(buff); }

        @Override public int getMemory(Object value) { return value instanceof Document ? Bson.heapSize(value) : super.getMemory(value); }
    }

    /**
     * Index keys in BSON value order, stored as BSON. H2 orders keys of a class it
     * does not know (mongo-java-server's KeyValue) by Java-serialising both sides of
     * every comparison, and every insert, `_id` lookup and unique check walks the
     * index: `ObjectDataType.serialize` under `SerializedObjectType.compare` showed in
     * jstack samples of the engine under the bench's load.
     * Values in a KeyValue are normalised (1 and 1.0 are one key, as in MongoDB).
     */
    static final class KeyOrder extends ObjectDataType {
        private static final ValueComparator VALUES = ValueComparator.ascWithoutListHandling();

        @Override public int compare(Object a, Object b) {
            if (a instanceof KeyValue && b instanceof KeyValue) {
                KeyValue x = (KeyValue) a, y = (KeyValue) b;
                for (int i = 0; i < Math.min(x.size(), y.size()); i++) {
                    int order = VALUES.compare(x.get(i), y.get(i));
                    if (order != 0) return order;
                }
                return Integer.compare(x.size(), y.size());
            }
            return super.compare(a, b);
        }

        /** A key as the document {"0": first value, "1": second, ...}. */
        @Override public void write(WriteBuffer buff, Object key) {
            if (key instanceof KeyValue) {
                KeyValue values = (KeyValue) key;
                Document document = new Document();
                for (int i = 0; i < values.size(); i++) document.put(Integer.toString(i), values.get(i));
                if (Bson.write(buff, document)) return;
            }
            super.write(buff, key);
        }

        @Override public Object read(ByteBuffer buff) {
            return Bson.isTagged(buff) ? new KeyValue(Bson.read(buff).values()) : super.read(buff);  // KeyValue copies them
        }

        @Override public int getMemory(Object key) { return key instanceof KeyValue ? Bson.heapSize(key) : super.getMemory(key); }
    }

    /** H2's unique index (H2UniqueIndex, whose constructor is not public) on a map in KeyOrder. */
    static final class OrderedUniqueIndex extends AbstractUniqueIndex<Object> {
        private final MVMap<KeyValue, Object> map;

        OrderedUniqueIndex(MVMap<KeyValue, Object> map, String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
            this.map = map;
        }

        @Override protected Object removeDocument(KeyValue key) { return map.remove(key); }
        @Override protected boolean putKeyPosition(KeyValue key, Object position) { return map.putIfAbsent(key, Missing.ofNullable(position)) == null; }
        @Override protected Iterable<Entry<KeyValue, Object>> getIterable() { return map.entrySet(); }
        @Override protected Object getPosition(KeyValue key) { return map.get(key); }
        @Override public long getCount() { return map.sizeAsLong(); }
        @Override public boolean isEmpty() { return map.isEmpty(); }
        @Override public long getDataSize() { return getCount(); }
    }

    /** H2Database whose collections are IdIndexedCollections (map names as H2Database's). */
    static final class IdIndexedDatabase extends H2Database {
        private static MVStore store;  // H2Database opens its collections from its constructor, before fields are set

        IdIndexedDatabase(String name, MVStore mvStore, CursorRegistry cursors) {
            super(name, mvStore, cursors);
        }

        /**
         * Unique indexes on maps in KeyOrder, under a name of their own: a file from
         * before keeps its serialisation-ordered map, which is dropped and rebuilt
         * from the documents once (an empty index is built when it is opened).
         */
        @Override protected Index<Object> openOrCreateUniqueIndex(String collection, String indexName, List<IndexKey> keys, boolean sparse) {
            String serialisationOrdered = getFullCollectionNamespace(collection) + "._index_" + indexName;
            if (store.hasMap(serialisationOrdered)) store.removeMap(serialisationOrdered);
            MVMap<KeyValue, Object> map = store.openMap(serialisationOrdered + ORDERED, new MVMap.Builder<KeyValue, Object>().keyType(new KeyOrder()));
            return new OrderedUniqueIndex(map, indexName, keys, sparse);
        }

        @Override protected void dropIndex(MongoCollection<Object> collection, String indexName) {
            super.dropIndex(collection, indexName);
            String name = getFullCollectionNamespace(collection.getCollectionName()) + "._index_" + indexName + ORDERED;
            if (store.hasMap(name)) store.removeMap(name);
        }

        /**
         * A secondary index this engine ignores (mongo-java-server keeps none); as
         * shipped it reports itself empty, so opening a database streamed every
         * document of the collection twice to fill it with nothing: minutes for a
         * million rows. Reporting it filled skips that.
         */
        @Override protected Index<Object> openOrCreateSecondaryIndex(String collection, String indexName, List<IndexKey> keys, boolean sparse) {
            return new EmptyIndex<>(indexName, keys) {
                @Override public boolean isEmpty() { return false; }
            };
        }

        @Override protected MongoCollection<Object> openOrCreateCollection(String name, CollectionOptions options) {
            String namespace = getFullCollectionNamespace(name);
            MVMap<Object, Document> data = store.openMap("databases." + namespace,
                    new MVMap.Builder<Object, Document>().valueType(new DocumentType()));
            return new IdIndexedCollection(this, name, options, data, store.openMap("meta." + namespace), cursorRegistry);
        }
    }

    /** H2Backend whose replies to writes leave only once the changes are in the file. */
    static final class CommittingH2Backend extends H2Backend {
        private final GroupCommit groupCommit;

        CommittingH2Backend(MVStore store) {
            super(store);
            groupCommit = new GroupCommit(store);
        }

        @Override protected MongoDatabase openOrCreateDatabase(String name) {
            return new IdIndexedDatabase(name, getMvStore(), getCursorRegistry());
        }

        @Override public Document handleMessage(MongoMessage message) {
            if (READS.contains(message.getDocument().keySet().iterator().next().toLowerCase())) {
                return super.handleMessage(message);
            }
            COMMANDS.readLock().lock();
            try {
                return super.handleMessage(message);
            } finally {
                COMMANDS.readLock().unlock();
                groupCommit.await();
            }
        }

        @Override public QueryResult handleQuery(MongoQuery query) {  // legacy OP_QUERY: the handshake
            COMMANDS.readLock().lock();
            try {
                return super.handleQuery(query);
            } finally {
                COMMANDS.readLock().unlock();
                groupCommit.await();
            }
        }

        @Override public void close() {
            getMvStore().close(CLOSE_COMPACTION_MILLIS);
            super.close();  // closes the cursors; closing the store again is a no-op
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 3) {
            System.err.println("usage: MongoLauncher HOST PORT FILE");
            System.exit(2);
        }
        MVStore store = new MVStore.Builder().fileName(args[2]).autoCommitDisabled()
                .cacheSize(Integer.getInteger("mvstore.cacheMiB", 16)).open();
        // A chunk a commit replaced is kept this long before its space is reused: a read
        // still walking an older version of a map (mongo-java-server registers no
        // readers with the store) would otherwise meet a chunk already gone, which
        // 0 ms did under load ("Chunk … not found" answered to a command).
        store.setRetentionTime(RETENTION_MILLIS);
        IdIndexedDatabase.store = store;  // before the backend opens the file's databases
        CommittingH2Backend backend = new CommittingH2Backend(store);
        backend.version(MONGO_5_0);
        MongoServer server = new MongoServer(backend);
        server.bind(args[0], Integer.parseInt(args[1]));

        ScheduledExecutorService compactor = Executors.newSingleThreadScheduledExecutor(runnable -> {
            Thread thread = new Thread(runnable, "mvstore-compactor");
            thread.setDaemon(true);
            return thread;
        });
        compactor.scheduleWithFixedDelay(() -> {
            COMMANDS.writeLock().lock();  // a compaction commits too
            try {
                if (!store.isClosed()) store.compact(COMPACT_BELOW_FILL_PERCENT, COMPACT_WRITE_BYTES);
            } finally {
                COMMANDS.writeLock().unlock();
            }
        }, COMPACT_EVERY_SECONDS, COMPACT_EVERY_SECONDS, TimeUnit.SECONDS);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("MongoLauncher: stopping");
            compactor.shutdownNow();
            server.shutdown();  // stops listening, finishes running commands, closes the backend
            System.err.println("MongoLauncher: stopped, " + args[2] + " closed");
            stopped.countDown();
        }, "shutdown"));
        System.err.println("MongoLauncher: mongo-java-server (H2 " + args[2] + ") on "
                + args[0] + ":" + args[1] + ", reporting MongoDB 5.0 / wire 13");
        stopped.await();
    }
}
