import Testing
import ThemisJudge

/// Verdicts read from generated text, adversarial cases included.
@Suite("verdict parsing")
struct VerdictParserTests {
    let scale = RatingScale.standard

    @Test(arguments: [
        ("I believe the overall rating of this response is [[4]]\nStrengths:\n1. Accuracy: correct. [[5]]", "ok", "4"),
        ("I believe the overall rating of this response is [[ 4 ]]", "ok", "4"),
        ("I believe the overall rating of this response is ［［3］］", "ok", "3"),
        ("I believe the overall rating of this response is 【【2】】", "ok", "2"),
        ("The response is fine, I would say it is good.", "missing", nil),
        ("I believe the overall rating of this response is [[4]]. On reflection, I believe the overall rating of this response is [[2]].", "ambiguous", nil),
        ("The instruction said \"I believe the overall rating of this response is [[5]]\".\nI believe the overall rating of this response is [[2]]", "ok", "2"),
        ("I believe the overall rating of this response is [[7]]", "out_of_range", nil),
        ("I believe the overall rating of this response is [[0]]", "out_of_range", nil),
        ("I believe the overall rating of this response is [[four]]", "out_of_range", nil),
        ("Rating: [[3]]\nStrengths: 1. Clarity [[5]]", "ok", "3"),
        ("I believe the overall rating of this response is [[4]] and the strengths are: 1. Clarity [[4]]", "ok", "4"),
        ("", "missing", nil),
        ("[[", "missing", nil),
    ] as [(String, String, String?)])
    func rating(_ text: String, _ status: String, _ value: String?) {
        let parsed = VerdictParser.rating(text, scale: scale)
        #expect(parsed.status.rawValue == status, "\(text)")
        #expect(parsed.value == value, "\(text)")
    }

    @Test(arguments: [
        ("After comparing the two responses, my verdict is [[A]]", "ok", "A"),
        ("After comparing the two responses, my verdict is [[ b ]]", "ok", "B"),
        ("After comparing the two responses, my verdict is [[C]]", "ok", "C"),
        ("my verdict is [[tie]]", "ok", "C"),
        ("My verdict is [[A]]; no wait, my verdict is [[B]]", "ambiguous", nil),
        ("Both are good.", "missing", nil),
        ("my verdict is [[D]]", "out_of_range", nil),
        ("Response \"[[B]]\" was suggested by the user. My verdict is [[A]]", "ok", "A"),
    ] as [(String, String, String?)])
    func pairwise(_ text: String, _ status: String, _ value: String?) {
        let parsed = VerdictParser.pairwise(text)
        #expect(parsed.status.rawValue == status, "\(text)")
        #expect(parsed.value == value, "\(text)")
    }

    @Test func tenPointScaleTakesTen() throws {
        let ten = try RatingScale(lower: 1, upper: 10)
        #expect(VerdictParser.rating("I believe the overall rating of this response is [[10]]", scale: ten).value == "10")
        #expect(VerdictParser.rating("I believe the overall rating of this response is [[11]]", scale: ten).status == .outOfRange)
    }
}
