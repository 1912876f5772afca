// A call's result and errors are `GRPCStatus` values from the shared core; importing GRPCClient
// is enough to name them.
@_exported public import GRPCCore
// `connect(tls:)` takes `ClientTLSCredentials`: importing GRPCClient is enough to build them.
@_exported public import GRPCTLS
