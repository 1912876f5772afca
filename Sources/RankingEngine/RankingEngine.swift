// Placeholder so the module builds; replaced by the issue that implements RankingEngine.
/// Namespace for the RankingEngine module.
public enum RankingEngineModule {}
