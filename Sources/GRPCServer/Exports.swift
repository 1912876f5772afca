// A handler names the shared gRPC vocabulary (`GRPCStatus`, the framer) in its signatures;
// importing GRPCServer is enough to name it.
@_exported public import GRPCCore
// `GRPCServerConfiguration.tls` holds `ServerTLSCredentials`: importing GRPCServer is enough to
// load and reload them.
@_exported public import GRPCTLS
