import AllotCore
import DequeModule
import Foundation
public import Logging
import Synchronization

/// A value carried by an event.
public enum EventValue: Sendable, Hashable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
}

/// Something the tracker did or saw: a claim, a move, an audit, host metrics, an orphan.
public struct TrackerEvent: Sendable, Hashable {
    /// Increasing number within this process.
    public var sequence: Int
    /// Seconds since 1970.
    public var time: Double
    /// `claim.build`, `move.resize`, `audit.node`, `compute.metrics.update`, …
    public var type: String
    public var node: String?
    public var fields: [String: EventValue]

    /// The event as a JSON object (one line, no spaces): `sequence`, `time`, `type`, `node`, then `fields` with
    /// their keys sorted.
    public var json: String {
        let value = JSONValue.object([
            "sequence": .int(sequence), "time": .double(time), "type": .string(type), "node": .stringOrNull(node),
            "fields": .sortedObject(fields.mapValues { field in
                switch field {
                case .string(let text): .string(text)
                case .int(let number): .int(number)
                case .double(let number): .double(number)
                case .bool(let flag): .bool(flag)
                }
            }),
        ])
        return String(decoding: value.serializedBytes(.compact), as: UTF8.self)
    }
}

/// Fans tracker events out to subscribers (Server-Sent Events, tests) and to the log; keeps the last few.
public final class EventBus: Sendable {
    private struct State {
        var sequence = 0
        /// The last ``keep`` events: a ring, so that dropping the oldest moves nothing (an array moved every kept
        /// event at each publish: a few microseconds of every claim).
        var recent = Deque<TrackerEvent>()
        var subscribers: [Int: AsyncStream<TrackerEvent>.Continuation] = [:]
        var nextSubscriber = 0
        /// Set by ``finishStreams()``: no stream is open any more, and new ones end at once.
        var finished = false
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let keep: Int
    private let now: @Sendable () -> Double

    public init(logger: Logger, keep: Int = 1000, now: (@Sendable () -> Double)? = nil) {
        self.logger = logger
        self.keep = keep
        self.now = now ?? { Date().timeIntervalSince1970 }
    }

    /// Publishes an event to every subscriber and logs it (`notice` for problems, `info` otherwise).
    public func publish(_ type: String, node: String? = nil, _ fields: [String: EventValue] = [:], problem: Bool = false) {
        let time = now()
        let (event, targets) = state.withLock { state -> (TrackerEvent, [AsyncStream<TrackerEvent>.Continuation]) in
            state.sequence += 1
            let event = TrackerEvent(sequence: state.sequence, time: time, type: type, node: node, fields: fields)
            state.recent.append(event)
            if state.recent.count > keep { state.recent.removeFirst(state.recent.count - keep) }
            return (event, Array(state.subscribers.values))
        }
        for target in targets { target.yield(event) }
        let level: Logger.Level = problem ? .notice : .info
        guard logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = ["allot.event": .string(type)]
        if let node { metadata["allot.node"] = .string(node) }
        for (key, value) in fields {
            metadata["allot." + key] = switch value {
            case .string(let s): .string(s)
            case .int(let i): .stringConvertible(i)
            case .double(let d): .stringConvertible(d)
            case .bool(let b): .stringConvertible(b)
            }
        }
        logger.log(level: level, "\(type)", metadata: metadata)
    }

    /// The events still kept, oldest first, after sequence number `after`.
    public func recent(after: Int = 0) -> [TrackerEvent] {
        state.withLock { $0.recent.filter { $0.sequence > after } }
    }

    /// A stream of every event from now on; it ends when the consumer stops iterating, or at once and for good
    /// after ``finishStreams()``.
    public func subscribe() -> AsyncStream<TrackerEvent> {
        let (stream, continuation) = AsyncStream<TrackerEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = state.withLock { state -> Int? in
            guard !state.finished else { return nil }
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = continuation
            return state.nextSubscriber
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every subscriber's stream (after the events already sent to it) and every later one at once: the
    /// process is shutting down, and an open stream (`GET /compute/v1/events`) must not keep it running.
    /// Events published afterwards are still logged and kept for ``recent(after:)``.
    public func finishStreams() {
        let targets = state.withLock { state in
            state.finished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for target in targets { target.finish() }
    }
}
