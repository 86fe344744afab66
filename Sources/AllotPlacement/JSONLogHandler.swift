import AllotCore
import Foundation
public import Logging

/// A swift-log handler that writes one JSON object per line to standard error:
/// `{"ts", "level", "label", "msg", ...metadata}`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: JSONValue] = [
            "ts": .string(Date().formatted(.iso8601)),
            "level": .string(event.level.rawValue), "label": .string(label), "msg": .string(event.message.description),
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for (key, value) in merged where fields[key] == nil { fields[key] = Self.json(value) }
        let order = ["ts", "level", "label", "msg"] + merged.keys.sorted().filter { !["ts", "level", "label", "msg"].contains($0) }
        let line = JSONValue.object(fields, order: order).serialized() + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let item): return .string(item.description)
        case .array(let items): return .array(items.map(json))
        case .dictionary(let items): return .sortedObject(items.mapValues(json))
        }
    }
}
