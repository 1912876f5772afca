// Placeholder so the module builds; replaced by the issue that implements Reranking.
/// Namespace for the Reranking module.
public enum RerankingModule {}
