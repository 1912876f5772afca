// Users of the codec work with the API values; importing RankingAPI is enough to name them.
@_exported public import RankingModel
