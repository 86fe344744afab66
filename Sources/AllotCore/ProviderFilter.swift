/// The filters of `GET /resource_providers`; every one present must hold.
public struct ProviderFilter: Sendable, Equatable {
    public var name: String?
    public var uuid: String?
    /// Providers in the same tree as this provider.
    public var inTree: String?
    /// Each inner list is one `member_of` parameter: the provider must be in at least one of its aggregates.
    public var memberOf: [[String]] = []
    /// Aggregates the provider must not be in (`member_of=!…`).
    public var forbiddenAggregates: [String] = []
    /// Each inner list is one any-of group: the provider must have at least one of its traits.
    public var requiredTraits: [[String]] = []
    /// Traits the provider must not have (`required=!…`).
    public var forbiddenTraits: [String] = []
    /// Amounts by class that must fit in the provider's free capacity and unit rules.
    public var resources: [String: Int] = [:]

    public init() {}
}
