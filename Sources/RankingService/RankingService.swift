// Placeholder so the module builds; replaced by the issue that implements RankingService.
/// Namespace for the RankingService module.
public enum RankingServiceModule {}
