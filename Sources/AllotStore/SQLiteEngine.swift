import AllotCore
import CSQLite3
import Logging
import NIOCore
import NIOPosix
import SQLKit
import Synchronization

/// One SQLite connection driven directly through the C API: statements are prepared once and cached, and run
/// on the calling thread (no thread hop per statement, nor for the `COMMIT` that waits for the disk).
///
/// Every use goes through ``Database``, which holds its gate for the whole of a transaction or read, so the
/// connection is never used by two tasks at once.
final class SQLiteEngine: @unchecked Sendable {
    // @unchecked: the handle and the statement cache are used only by the one task that holds this connection's
    // AsyncGate in Database (the writer's: transaction(), withConnection(), close(); the reader's; the
    // checkpointer's), or by Database.open before any other task can see the connection; the gate's Mutex
    // orders the memory effects between successive holders. The connections are opened NOMUTEX on that ground.
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private static let cacheLimit = 512

    init(path: String) throws {
        var db: OpaquePointer?
        // NOMUTEX: SQLite takes no lock of its own per call; the gate that serialises every use (above) is the lock.
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteEngineError(code: code, extendedCode: code, message: message)
        }
        sqlite3_extended_result_codes(db, 1)
        handle = db
    }

    deinit { close() }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Counts the WAL frames this connection's commits append (`sqlite3_wal_hook`). The hook replaces SQLite's
    /// automatic checkpoints, so only a connection with `wal_autocheckpoint=0` (checkpointed by another) counts.
    /// The counter must outlive the connection (the writer holds both).
    func countWALFrames(into counter: WALFrameCounter) {
        guard let handle else { return }
        sqlite3_wal_hook(handle, { context, _, _, pages in
            if let context { Unmanaged<WALFrameCounter>.fromOpaque(context).takeUnretainedValue().committed(walLength: Int(pages)) }
            return SQLITE_OK
        }, Unmanaged.passUnretained(counter).toOpaque())
    }

    /// Whether a transaction is open on the connection (SQLite ends one by itself after some errors).
    var inTransaction: Bool {
        guard let handle else { return false }
        return sqlite3_get_autocommit(handle) == 0
    }

    /// Runs one statement with its binds, calling `onRow` for each row.
    func execute(_ sql: String, _ binds: [SQLiteValue], _ onRow: (SQLiteRowValues) throws -> Void) throws {
        guard let handle else { throw SQLiteEngineError.closed }
        let statement = try prepared(sql, handle)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (index, value) in binds.enumerated() {
            let position = Int32(index + 1)
            let code: Int32 = switch value {
            case .null: sqlite3_bind_null(statement, position)
            case .integer(let number): sqlite3_bind_int64(statement, position, number)
            case .float(let number): sqlite3_bind_double(statement, position, number)
            case .text(let text): try Self.bindText(text, statement, position)
            case .blob(let bytes):
                bytes.withUnsafeBytes { sqlite3_bind_blob(statement, position, $0.baseAddress, Int32($0.count), Self.transient) }
            }
            guard code == SQLITE_OK else { throw error(handle, code) }
        }
        let count = Int(sqlite3_column_count(statement))
        var columns: [String]?
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else { throw error(handle, code) }
            if columns == nil {
                columns = (0..<count).map { String(cString: sqlite3_column_name(statement, Int32($0))) }
            }
            var values: [SQLiteValue] = []
            values.reserveCapacity(count)
            for column in 0..<Int32(count) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: values.append(.float(sqlite3_column_double(statement, column)))
                case SQLITE_TEXT:
                    let length = Int(sqlite3_column_bytes(statement, column))
                    if let text = sqlite3_column_text(statement, column) {
                        values.append(.text(String(decoding: UnsafeBufferPointer(start: text, count: length), as: UTF8.self)))
                    } else {
                        values.append(.text(""))
                    }
                case SQLITE_BLOB:
                    let length = Int(sqlite3_column_bytes(statement, column))
                    let start = sqlite3_column_blob(statement, column)?.assumingMemoryBound(to: UInt8.self)
                    values.append(.blob(start.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []))
                default: values.append(.null)
                }
            }
            try onRow(SQLiteRowValues(columns: columns ?? [], values: values))
        }
    }

    /// Binds `text` with its length in bytes (never up to a NUL, which would cut it short).
    /// - Throws: a `400` ``PlacementError`` for text holding a NUL character: PostgreSQL cannot store one, so
    ///   neither backend does (a database must stay movable between them), and nothing is stored altered.
    private static func bindText(_ text: String, _ statement: OpaquePointer, _ position: Int32) throws -> Int32 {
        var text = text
        return try text.withUTF8 { bytes throws -> Int32 in
            if bytes.contains(0) { throw PlacementError.nulCharacter }
            return bytes.withMemoryRebound(to: CChar.self) { chars in
                // An empty string may have no storage: bind SQLite's empty text, not NULL.
                guard let start = chars.baseAddress else { return sqlite3_bind_text(statement, position, "", 0, Self.transient) }
                return sqlite3_bind_text64(statement, position, start, UInt64(chars.count), Self.transient, UInt8(SQLITE_UTF8))
            }
        }
    }

    private func prepared(_ sql: String, _ handle: OpaquePointer) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw error(handle, code) }
        if statements.count >= Self.cacheLimit {
            for cached in statements.values { sqlite3_finalize(cached) }
            statements.removeAll()
        }
        statements[sql] = statement
        return statement
    }

    private func error(_ handle: OpaquePointer, _ code: Int32) -> SQLiteEngineError {
        SQLiteEngineError(code: code & 0xFF, extendedCode: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)))
    }

    /// `SQLITE_TRANSIENT`: SQLite copies the bound text or blob.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// A failed SQLite call, with its result codes and SQLite's message.
public struct SQLiteEngineError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var extendedCode: Int32
    public var message: String

    public var description: String { "SQLite error \(extendedCode): \(message)" }

    /// A use of a connection after ``Database/close()``.
    static let closed = SQLiteEngineError(code: SQLITE_MISUSE, extendedCode: SQLITE_MISUSE, message: "closed")
    /// SQLite ended a batch's transaction itself (it does after an I/O error or a full disk).
    static let transactionEnded = SQLiteEngineError(
        code: SQLITE_ABORT, extendedCode: SQLITE_ABORT, message: "the transaction was rolled back")

    /// A UNIQUE or PRIMARY KEY constraint failed.
    var isUniqueViolation: Bool {
        extendedCode == 2067 || extendedCode == 1555 || (code == SQLITE_CONSTRAINT && extendedCode == SQLITE_CONSTRAINT)
    }

    /// The fault of the storage under the database this error reports, if it is one: a full disk
    /// (``StoreError/storageFull(_:)``), or a file system or lock that cannot be used now and may be later
    /// (``StoreError/unavailable(_:)``). `nil` for errors of the statement itself (constraints, SQL, corruption).
    var storeFailure: StoreError? {
        switch code {
        case SQLITE_FULL: .storageFull("SQLite \(extendedCode): \(message)")
        case SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_PROTOCOL:
            .unavailable("SQLite \(extendedCode): \(message)")
        default: nil
        }
    }
}

/// A value as SQLite stores it.
enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case float(Double)
    case text(String)
    case blob([UInt8])

    /// Converts a SQLKit bind (an `Encodable` value: numbers, text, booleans, optionals of them).
    init(bind: any Encodable & Sendable) throws {
        switch bind {
        case let value as Int: self = .integer(Int64(value))
        case let value as String: self = .text(value)
        case let value as Double: self = .float(value)
        case let value as Bool: self = .integer(value ? 1 : 0)
        case let value as Int64: self = .integer(value)
        case let value as Int32: self = .integer(Int64(value))
        case let value as [UInt8]: self = .blob(value)
        default:
            let encoder = SingleValueCapture()
            try bind.encode(to: encoder)
            guard !encoder.compound else { throw StoreError.unsupportedBind(String(describing: type(of: bind))) }
            self = encoder.value
        }
    }
}

/// One result row: column names (shared by the statement's rows) and values.
struct SQLiteRowValues: SQLRow {
    let columns: [String]
    let values: [SQLiteValue]

    var allColumns: [String] { columns }

    func contains(column: String) -> Bool { columns.contains(column) }

    func value(_ column: String) throws -> SQLiteValue {
        guard let index = columns.firstIndex(of: column) else {
            throw DecodingError.keyNotFound(
                SQLiteColumnKey(column), .init(codingPath: [], debugDescription: "no column \(column)"))
        }
        return values[index]
    }

    func decodeNil(column: String) throws -> Bool { try value(column) == .null }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        let value = try value(column)
        switch (value, type) {
        case (.integer(let n), is Int.Type): return Int(n) as! D
        case (.integer(let n), is Int?.Type): return Int(n) as! D
        case (.null, is Int?.Type): return Int?.none as! D
        case (.null, is String?.Type): return String?.none as! D
        case (.null, is Double?.Type): return Double?.none as! D
        case (.text(let s), is String.Type): return s as! D
        case (.text(let s), is String?.Type): return s as! D
        case (.float(let d), is Double.Type): return d as! D
        case (.integer(let n), is Double.Type): return Double(n) as! D
        case (.float(let d), is Double?.Type): return d as! D
        case (.integer(let n), is Double?.Type): return Double(n) as! D
        default: return try D(from: SQLiteValueDecoder(value: value, column: column))
        }
    }
}

struct SQLiteColumnKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Decodes one column value into any single-value `Decodable` (optionals, booleans, integers of other widths).
private struct SQLiteValueDecoder: Decoder, SingleValueDecodingContainer {
    let value: SQLiteValue
    let column: String
    var codingPath: [any CodingKey] { [SQLiteColumnKey(column)] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        throw mismatch("a keyed container")
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw mismatch("an unkeyed container") }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func decodeNil() -> Bool { value == .null }
    func decode(_ type: Bool.Type) throws -> Bool {
        if case .integer(let n) = value { return n != 0 }
        if case .text(let s) = value { return s == "1" || s.lowercased() == "true" }
        throw mismatch("a boolean")
    }
    func decode(_ type: String.Type) throws -> String {
        if case .text(let s) = value { return s }
        if case .integer(let n) = value { return String(n) }
        if case .float(let d) = value { return String(d) }
        throw mismatch("text")
    }
    func decode(_ type: Double.Type) throws -> Double {
        if case .float(let d) = value { return d }
        if case .integer(let n) = value { return Double(n) }
        if case .text(let s) = value, let d = Double(s) { return d }
        throw mismatch("a number")
    }
    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode<T: BinaryInteger & Decodable>(integer type: T.Type) throws -> T {
        if case .integer(let n) = value, let exact = T(exactly: n) { return exact }
        if case .float(let d) = value, let exact = T(exactly: d) { return exact }
        if case .text(let s) = value, let n = Int64(s), let exact = T(exactly: n) { return exact }
        throw mismatch("an integer")
    }
    func decode(_ type: Int.Type) throws -> Int { try decode(integer: type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decode(integer: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decode(integer: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decode(integer: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decode(integer: type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decode(integer: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(integer: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(integer: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(integer: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(integer: type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }

    private func mismatch(_ wanted: String) -> DecodingError {
        .typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "column \(column) holds \(value), not \(wanted)"))
    }
}

/// Captures the one value an `Encodable` bind encodes. A value that encodes as a keyed or unkeyed container
/// (a struct, an array) is not a single SQL value: ``SQLiteValue/init(bind:)`` throws for it.
private final class SingleValueCapture: Encoder, SingleValueEncodingContainer {
    var value: SQLiteValue = .null
    /// Set when the value asked for a container: it is not a single value.
    var compound = false
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        compound = true
        return KeyedEncodingContainer(RefusingContainer<Key>())
    }
    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        compound = true
        return RefusingContainer<SQLiteColumnKey>()
    }
    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    func encodeNil() { value = .null }
    func encode(_ v: Bool) { value = .integer(v ? 1 : 0) }
    func encode(_ v: String) { value = .text(v) }
    func encode(_ v: Double) { value = .float(v) }
    func encode(_ v: Float) { value = .float(Double(v)) }
    func encode(_ v: Int) { value = .integer(Int64(v)) }
    func encode(_ v: Int8) { value = .integer(Int64(v)) }
    func encode(_ v: Int16) { value = .integer(Int64(v)) }
    func encode(_ v: Int32) { value = .integer(Int64(v)) }
    func encode(_ v: Int64) { value = .integer(v) }
    func encode(_ v: UInt) { value = .integer(Int64(v)) }
    func encode(_ v: UInt8) { value = .integer(Int64(v)) }
    func encode(_ v: UInt16) { value = .integer(Int64(v)) }
    func encode(_ v: UInt32) { value = .integer(Int64(v)) }
    func encode(_ v: UInt64) { value = .integer(Int64(bitPattern: v)) }
    func encode<T: Encodable>(_ v: T) throws { try v.encode(to: self) }
}

extension PlacementError {
    /// Text holding U+0000, which neither backend stores (PostgreSQL cannot; SQLite once cut such text short).
    static var nulCharacter: PlacementError {
        .badRequest("Text containing a NUL character (\\u0000) cannot be stored or searched for.")
    }
}

/// The container a compound bind value gets: it refuses every member (the bind as a whole is then refused).
private struct RefusingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol, UnkeyedEncodingContainer {
    var codingPath: [any CodingKey] { [] }
    var count: Int { 0 }

    private func refuse() -> EncodingError {
        EncodingError.invalidValue((), .init(codingPath: [], debugDescription: "SQL binds are single values"))
    }
    mutating func encodeNil(forKey key: Key) throws { throw refuse() }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { throw refuse() }
    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> { KeyedEncodingContainer(RefusingContainer<NestedKey>()) }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { self }
    mutating func superEncoder() -> any Encoder { SingleValueCapture() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { SingleValueCapture() }
    mutating func encodeNil() throws { throw refuse() }
    mutating func encode<T: Encodable>(_ value: T) throws { throw refuse() }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(RefusingContainer<NestedKey>())
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { self }
}

/// SQLKit's view of the engine: serializes queries in SQLite's dialect and runs them inline.
struct SQLiteEngineDatabase: SQLDatabase {
    let engine: SQLiteEngine
    let logger: Logger
    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }
    var dialect: any SQLDialect { SQLiteEngineDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        do {
            try run(query, onRow)
            return eventLoop.makeSucceededVoidFuture()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try run(query, onRow)
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }

    private func run(_ query: any SQLExpression, _ onRow: (any SQLRow) -> Void) throws {
        let (sql, binds) = serialize(query)
        try engine.execute(sql, try binds.map(SQLiteValue.init(bind:))) { onRow($0) }
    }
}

/// SQLite's SQL dialect, as far as Allot's raw queries need it (numbered `?N` binds, double-quoted identifiers).
struct SQLiteEngineDialect: SQLDialect {
    var name: String { "sqlite" }
    var identifierQuote: any SQLExpression { SQLRaw("\"") }
    var literalStringQuote: any SQLExpression { SQLRaw("'") }
    func bindPlaceholder(at position: Int) -> any SQLExpression { SQLRaw("?\(position)") }
    func literalBoolean(_ value: Bool) -> any SQLExpression { SQLRaw(value ? "TRUE" : "FALSE") }
    var literalDefault: any SQLExpression { SQLLiteral.null }
    var supportsAutoIncrement: Bool { false }
    var autoIncrementClause: any SQLExpression { SQLRaw("AUTOINCREMENT") }
    var upsertSyntax: SQLUpsertSyntax { .standard }
    var supportsReturning: Bool { true }
}

/// The frames (changed pages, 4 KiB each) the writer's commits have appended to the WAL: what a commit costs in
/// writes and at the disk sync. Told the WAL's length after each commit: the growth, or the whole length when the
/// WAL started again from its beginning (a commit longer than the rewound WAL counts short: benchmarks only).
final class WALFrameCounter: Sendable {
    private let state = Mutex<(total: Int, length: Int)>((0, 0))

    func committed(walLength: Int) {
        state.withLock { state in
            state.total += walLength > state.length ? walLength - state.length : walLength
            state.length = walLength
        }
    }

    var total: Int { state.withLock { $0.total } }
}
