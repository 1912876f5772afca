// Placeholder so the module builds; replaced by the issue that implements RankingAPI.
/// Namespace for the RankingAPI module.
public enum RankingAPIModule {}
