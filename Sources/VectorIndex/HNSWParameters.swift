/// HNSW construction parameters.
public struct HNSWParameters: Sendable, Codable, Equatable {
    /// Upper-level degree bound; level 0 allows `2 * m`. Valid range 2...256. Default 16.
    public var m: Int
    /// Beam width while inserting. Default 200.
    public var efConstruction: Int
    /// Seed for node levels. Default 42.
    public var seed: UInt64

    public init(m: Int = 16, efConstruction: Int = 200, seed: UInt64 = 42) {
        self.m = m
        self.efConstruction = efConstruction
        self.seed = seed
    }
}

/// The space an `ip` graph is built in. All search by the plain inner product `q · x`, read in place; only the
/// graph's links differ. Measurements behind the default are in docs/INDEX.md.
public enum InnerProductGraphSpace: String, Sendable, CaseIterable {
    /// Default. Upper levels and the leading part of each level-0 list (the navigation prefix) link by inner
    /// product, as hnswlib's "ip" space, which navigates quickly toward high inner products; the rest of each
    /// level-0 list links by angle (cosine), which keeps low-norm rows reachable. Unfiltered walks follow only the
    /// prefix, filtered walks everything. Builds two graphs, so build time is ~1.5–2×.
    case hybrid
    /// Links by inner product only. Unfiltered walks as fast as `hybrid`'s, but low-norm rows get no in-links, so
    /// filtered walks miss them.
    case plain
    /// Append `sqrt(maxNorm² − |x|²)` to every row (Bachrach et al. 2014) so MIPS becomes nearest-neighbour search
    /// in a metric space; the query's extra coordinate is 0, so scores stay `q · x`. Measured worst on
    /// norm-varying data: most rows crowd near the new axis and the walk stalls.
    case extraDimension
}
