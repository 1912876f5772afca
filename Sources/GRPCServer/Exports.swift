// A handler names the shared gRPC vocabulary (`GRPCStatus`, the framer) in its signatures;
// importing GRPCServer is enough to name it.
@_exported public import GRPCCore
