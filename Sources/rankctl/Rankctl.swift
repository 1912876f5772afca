import ArgumentParser

/// `rankctl`: the operator's and the publishing job's tool — build, verify, inspect and publish
/// snapshots, query a running rankd, generate demo data.
@main
struct Rankctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rankctl",
        abstract: "Build, verify and publish rankd snapshots; query a running rankd.",
        // Each subcommand lives in its own file, named for the command.
        subcommands: [
            BuildCommand.self, VerifyCommand.self, InspectCommand.self, SynthCommand.self, SearchCommand.self,
            RankCommand.self, PublishCommand.self, ActivateCommand.self, RollbackCommand.self, StatusCommand.self,
            UpdateItemsCommand.self, DeleteUserCommand.self, RelatedCommand.self, RankBatchCommand.self,
            EventsCommand.self,
        ]
    )
}
