public enum GRPCServerModule {}
