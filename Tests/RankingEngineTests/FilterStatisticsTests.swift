import RankingModel
import Snapshot
import Testing

@testable import RankingEngine

/// The pass-count estimates that let retrieval plan walk vs scan for filters other than one category.
@Suite struct FilterStatisticsTests {
    let fixture = EngineFixture.shared

    /// (estimate, items the filter really passes) for `configure`d filter.
    func estimateAndTruth(_ configure: (inout RankRequest.Filter) -> Void) -> (Int?, Int) {
        var filter = RankRequest.Filter()
        configure(&filter)
        let snapshot = fixture.snapshot
        return fixture.serving.overlay.read { live in
            ItemFilter.with(filter, snapshot: snapshot, live: live, scratch: RankScratch()) { (item) -> (Int?, Int) in
                let passing = (0..<snapshot.attributes.count).filter { item.accepts(Int32($0)) }.count
                return (fixture.serving.filterStatistics.estimate(item).passCount, passing)
            }
        }
    }

    @Test func categoriesBrandsStockAndPriceAreCountedExactly() {
        let snapshot = fixture.snapshot
        let cases: [(String, (inout RankRequest.Filter) -> Void)] = [
            (
                "two categories",
                { $0.includeCategories = [snapshot.categories.id(at: 1)!, snapshot.categories.id(at: 4)!] }
            ),
            ("one brand", { $0.includeBrands = [snapshot.brands.id(at: 3)!] }),
            ("in stock", { $0.inStockOnly = true }),
            (
                "price range",
                {
                    $0.minPrice = 20; $0.maxPrice = 60
                }
            ),
            ("price floor", { $0.minPrice = 75.5 }),
            ("one tag", { $0.tagsAny = [snapshot.tags.id(at: 2)!] }),
        ]
        for (name, configure) in cases {
            let (estimate, truth) = estimateAndTruth(configure)
            // 800 items: the price sample holds every price, so price counts are exact too.
            #expect(estimate == truth, "\(name): estimate \(String(describing: estimate)), \(truth) pass")
            #expect(truth > 0 && truth < snapshot.attributes.count, "\(name): the fixture should make this selective")
        }
    }

    @Test func combinedConditionsGiveTheSmallestCountAnUpperBound() {
        let snapshot = fixture.snapshot
        let (brand, _) = estimateAndTruth { $0.includeBrands = [snapshot.brands.id(at: 3)!] }
        let (stock, _) = estimateAndTruth { $0.inStockOnly = true }
        let (both, truth) = estimateAndTruth {
            $0.includeBrands = [snapshot.brands.id(at: 3)!]
            $0.inStockOnly = true
        }
        #expect(both == min(brand!, stock!))
        #expect(both! >= truth)
        let (tags, tagTruth) = estimateAndTruth { $0.tagsAny = [snapshot.tags.id(at: 0)!, snapshot.tags.id(at: 1)!] }
        #expect(tags! >= tagTruth)
    }

    @Test func exclusionsAloneGiveNoEstimate() {
        let (estimate, _) = estimateAndTruth {
            $0.excludeCategories = [fixture.snapshot.categories.id(at: 0)!]
            $0.excludeItemIDs = ["sku-1"]
        }
        #expect(estimate == nil)
    }

    @Test func unknownNamesCountAsNothing() {
        let (estimate, truth) = estimateAndTruth { $0.includeBrands = ["No Such Brand"] }
        #expect(estimate == 0 && truth == 0)
        var filter = RankRequest.Filter()
        filter.includeBrands = ["No Such Brand"]
        filter.maxPrice = 1_000
        let nothing = fixture.serving.overlay.read { live in
            ItemFilter.with(filter, snapshot: fixture.snapshot, live: live, scratch: RankScratch()) {
                fixture.serving.filterStatistics.estimate($0).passesNothing
            }
        }
        #expect(nothing)
    }

    /// A price range is estimated from a sample, so an estimate of 0 does not prove that nothing passes.
    @Test func aSampledPriceCountNeverClaimsNothingPasses() {
        var filter = RankRequest.Filter()
        filter.minPrice = 1_000_000
        let nothing = fixture.serving.overlay.read { live in
            ItemFilter.with(filter, snapshot: fixture.snapshot, live: live, scratch: RankScratch()) {
                fixture.serving.filterStatistics.estimate($0).passesNothing
            }
        }
        #expect(!nothing)
    }
}
