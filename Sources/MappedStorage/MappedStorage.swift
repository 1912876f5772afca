// Placeholder so the module builds; replaced by the issue that implements MappedStorage.
/// Namespace for the MappedStorage module.
public enum MappedStorageModule {}
