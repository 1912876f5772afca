// Placeholder so the module builds; replaced by the issue that implements Snapshot.
/// Namespace for the Snapshot module.
public enum SnapshotModule {}
