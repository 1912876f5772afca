// Placeholder so the module builds; replaced by the issue that implements VectorIndex.
/// Namespace for the VectorIndex module.
public enum VectorIndexModule {}
