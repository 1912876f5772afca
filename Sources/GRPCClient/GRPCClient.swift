// Placeholder so the module builds; replaced by the issue that implements GRPCClient.
/// Namespace for the GRPCClient module.
public enum GRPCClientModule {}
