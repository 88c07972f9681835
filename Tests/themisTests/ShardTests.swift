import Foundation
import Testing
import ThemisJudge
import ThemisTestSupport
import Yams

/// `--shard K/N`: the shards of a run together are the run; the Kubernetes and Slurm files in
/// deploy/ number their shards as `--shard` does, and their commands run.
@Suite("command line: sharded judging and deploy/", .serialized)
struct ShardTests {
    static let fields = "instruction=input,response_a=output_1,response_b=output_2"

    static func byID(_ path: String) throws -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for r in try JudgeCLITests.lines(path) {
            let id = try #require(r["id"] as? String)
            #expect(out[id] == nil, "\(id) written twice in \(path)")
            out[id] = r
        }
        return out
    }

    /// A value as sorted-key JSON, for comparing records field by field.
    static func json(_ value: Any?) -> String {
        guard let value else { return "absent" }
        return (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
    }

    @Test func shardsParseAndCoverEveryIdOnce() throws {
        #expect(try Shard("2/5") == Shard(index: 2, count: 5))
        for bad in ["3/3", "-1/3", "0/0", "1", "a/b", "1/2/3"] {
            #expect(throws: JudgeError.self, "\(bad)") { try Shard(bad) }
        }
        let ids = (0..<1000).map { "record-\($0)" }
        let shards = try (0..<7).map { try Shard(index: $0, count: 7) }
        for id in ids { #expect(shards.filter { $0.contains(id: id) }.count == 1) }
        let sizes = shards.map { s in ids.filter { s.contains(id: $0) }.count }
        #expect(sizes.allSatisfy { (100...186).contains($0) }, "uneven shards: \(sizes)")
        // a record added to the input leaves the others where they were
        let before = ids.map { Shard.index(of: $0, count: 7) }
        #expect((ids + ["new"]).prefix(ids.count).map { Shard.index(of: $0, count: 7) } == before)

        let bad = try CLI.run(["judge", "--input", "x.jsonl", "--shard", "3/3"])
        #expect(bad.status == 2 && bad.stderr.contains("--shard"), "usage errors exit 2: \(bad.stderr)")
    }

    /// Three shards of mtbench-human (the first 6 pairs), one of them killed and resumed, hold
    /// the records of the unsharded run with the same verdicts.
    @Test func threeShardsOfMTBenchEqualTheWholeRun() throws {
        let input = JudgeCLITests.shared.appendingPathComponent("mtbench-human-llmbar.json").path
        let common = ["judge", "--model", CLI.smollm, "--device", "cpu", "--input", input, "--limit", "6", "--fields", Self.fields,
                      "--keep-fields", "label", "--explain", "none"]
        let wholePath = JudgeCLITests.temporary("whole.jsonl")
        let whole = try CLI.run(common + ["--output", wholePath], measured: 25)
        #expect(whole.status == 0, "stderr: \(whole.stderr)")

        var parts: [[String: [String: Any]]] = []
        for k in 0..<3 {
            let path = JudgeCLITests.temporary("shard-\(k).jsonl")
            let args = common + ["--shard", "\(k)/3", "--output", path, "--batch", "1"]
            let expected = (1...6).filter { Shard.index(of: "line-\($0)", count: 3) == k }.count
            if k == 1 && expected >= 2 {
                // killed after its first record, then resumed
                let p = try ChildProcess(CLI.binary, args, captureOutput: false)
                let deadline = Date().addingTimeInterval(Budget.limit(measured: 15))
                while p.isRunning && Date() < deadline {
                    if ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").contains("\n") { break }
                    usleep(20_000)
                }
                p.signal(SIGKILL)
                p.waitForExit(timeout: 30)
                let written = try JudgeCLITests.lines(path).count
                #expect(written >= 1 && written < expected, "killed after \(written) of \(expected) records")
                let resumed = try CLI.run(args + ["--resume"], measured: 15)
                #expect(resumed.status == 0 && resumed.stderr.contains("resuming: \(written) records"), "stderr: \(resumed.stderr)")
            } else {
                let o = try CLI.run(args, measured: 15)
                #expect(o.status == 0, "stderr: \(o.stderr)")
            }
            let part = try Self.byID(path)
            #expect(part.count == expected, "shard \(k): \(part.keys.sorted())")
            parts.append(part)
        }
        let a = try Self.byID(wholePath)
        var b: [String: [String: Any]] = [:]
        for part in parts { b.merge(part) { x, _ in Issue.record("an id in two shards"); return x } }
        #expect(a.keys.sorted() == b.keys.sorted() && a.count == 6)
        var worst = 0.0
        for id in a.keys.sorted() {
            let x = try #require(a[id]), y = try #require(b[id])
            for key in ["status", "verdict", "scenario", "verdicts_by_order", "consistent", "label"] {
                #expect(Self.json(x[key]) == Self.json(y[key]), "\(id) \(key): \(Self.json(x[key])) vs \(Self.json(y[key]))")
            }
            let dx = try #require(x["distributions_by_order"] as? [[String: Double]])
            let dy = try #require(y["distributions_by_order"] as? [[String: Double]])
            for (p, q) in zip(dx, dy) { for (k, v) in p { worst = max(worst, abs(v - (q[k] ?? -1))) } }
        }
        #expect(worst < 1e-3, "label probabilities differ by up to \(worst)")
        print("3 shards vs the whole run: largest probability difference \(worst)")
    }

    // MARK: - deploy/

    static let deploy = CLI.root.appendingPathComponent("deploy")

    static func yamlDocuments(_ name: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: deploy.appendingPathComponent(name), encoding: .utf8)
        return try Yams.load_all(yaml: text).map { try #require($0 as? [String: Any], "\(name): a document is not a mapping") }
    }

    static func value(_ object: Any?, _ path: String) -> Any? {
        path.split(separator: ".").reduce(object) { o, key in
            if let i = Int(key) { return (o as? [Any]).flatMap { i < $0.count ? $0[i] : nil } }
            return (o as? [String: Any])?[String(key)]
        }
    }

    /// Records with ids chosen so that shard `k` of `n` holds exactly `take` of them, and others.
    static func shardInput(k: Int, n: Int, take: Int) throws -> (path: String, ids: [String]) {
        var mine: [String] = [], others: [String] = []
        var i = 0
        while mine.count < take || others.count < 2 {
            let id = "rec-\(i)"
            if Shard.index(of: id, count: n) == k { if mine.count < take { mine.append(id) } } else if others.count < 2 { others.append(id) }
            i += 1
        }
        let lines = try (mine + others).map { id in
            String(decoding: try JSONSerialization.data(withJSONObject: [
                "id": id, "instruction": "What is the capital of France?", "response": "Paris.", "scenario": "close_qa", "label": 5,
            ] as [String: Any], options: [.sortedKeys]), as: UTF8.self)
        }
        let dir = JudgeCLITests.temporary("deploy")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/input.jsonl"))
        return (dir, mine)
    }

    /// The Job's completions, its SHARDS and the `--shard` of its command agree; the command runs
    /// as pod K against a `themis serve` of SmolLM2 standing in for vLLM and judges shard K.
    /// The Slurm array likewise, its script run with bash as array task K.
    @Test func deployFilesNumberShardsAsTheJudgeDoesAndTheirCommandsRun() throws {
        let job = try #require(try Self.yamlDocuments("kubernetes/judge-job.yaml").first { $0["kind"] as? String == "Job" })
        let spec = try #require(job["spec"] as? [String: Any])
        #expect(spec["completionMode"] as? String == "Indexed")
        let n = try #require(spec["completions"] as? Int)
        #expect((1...n).contains(spec["parallelism"] as? Int ?? 0))
        #expect(Self.value(spec, "template.spec.restartPolicy") as? String == "Never")
        let container = try #require(Self.value(spec, "template.spec.containers.0") as? [String: Any])
        let env = (container["env"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) { $0[$1["name"] as? String ?? ""] = $1["value"] as? String }
        #expect(env["SHARDS"] == String(n), "SHARDS \(env["SHARDS"] ?? "-") but completions \(n)")
        let command = try #require(Self.value(container, "args.0") as? String)
        #expect(command.contains("--shard ${JOB_COMPLETION_INDEX}/${SHARDS}"), "\(command)")
        #expect(command.contains("--output /data/judged/shard-${JOB_COMPLETION_INDEX}.jsonl") && command.contains("--resume"), "\(command)")

        // the command's server is the Service, its model name the one vLLM serves
        let model = try Self.yamlDocuments("kubernetes/judge-model.yaml")
        let service = try #require(model.first { $0["kind"] as? String == "Service" })
        let deployment = try #require(model.first { $0["kind"] as? String == "Deployment" })
        let serviceName = try #require(Self.value(service, "metadata.name") as? String)
        let port = try #require(Self.value(service, "spec.ports.0.port") as? Int)
        #expect(command.contains("--model http://\(serviceName):\(port)/v1"), "\(command)")
        let selector = try #require(Self.value(service, "spec.selector") as? [String: String])
        let labels = try #require(Self.value(deployment, "spec.template.metadata.labels") as? [String: String])
        #expect(selector.allSatisfy { labels[$0.key] == $0.value })
        let vllmArgList = try #require(Self.value(deployment, "spec.template.spec.containers.0.args") as? [Any])
        let vllmArgs: [String] = vllmArgList.map { "\($0)" }
        let servedAt = try #require(vllmArgs.firstIndex(of: "--served-model-name"))
        let served = vllmArgs[servedAt + 1]
        #expect(command.contains("--remote-model \(served)"), "\(command)")
        let portAt = try #require(vllmArgs.firstIndex(of: "--port"))
        #expect(vllmArgs[portAt + 1] == String(port))

        // the Slurm array is 0..N-1 and the script's shard count is the array's size
        let sbatch = try String(contentsOf: Self.deploy.appendingPathComponent("slurm/judge-array.sbatch"), encoding: .utf8)
        let arrayLine = try #require(sbatch.split(separator: "\n").first { $0.hasPrefix("#SBATCH --array=") })
        let range = arrayLine.dropFirst("#SBATCH --array=".count).split(separator: "%")[0].split(separator: "-").compactMap { Int($0) }
        try #require(range.count == 2, "\(arrayLine)")
        #expect(range[0] == 0, "array tasks must count from 0: \(arrayLine)")
        let tasks = range[1] - range[0] + 1
        #expect(sbatch.contains("SHARDS=${SHARDS:-$SLURM_ARRAY_TASK_COUNT}") && sbatch.contains(#"--shard "$SLURM_ARRAY_TASK_ID/$SHARDS""#))

        // both commands, run for real as shard 3, against a themis serve standing in for vLLM
        let k = 3
        let server = try ServeTests.Server(["--model", CLI.smollm, "--device", "cpu", "--ctx-size", "2048", "--name", served])
        defer { server.stop() }
        try #require(server.port > 0, "server did not start: \(server.log)")
        let path = CLI.binary.split(separator: "/").dropLast().joined(separator: "/")
        let environment = ["PATH": "/" + path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
        let quick = " --explain none --max-attempts 2"

        let pod = try Self.shardInput(k: k, n: n, take: 1)
        let podCommand = command.replacingOccurrences(of: "http://\(serviceName):\(port)", with: server.base)
            .replacingOccurrences(of: "/data", with: pod.path) + quick
        let ranPod = try ChildProcess.run("/bin/sh", ["-c", podCommand], environment: environment.merging(
            ["JOB_COMPLETION_INDEX": String(k), "SHARDS": env["SHARDS"] ?? ""]) { $1 }, limit: Budget.limit(measured: 20))
        #expect(ranPod.termination.status == 0, "pod \(k): \(ranPod.stderr)")
        let podOut = try Self.byID(pod.path + "/judged/shard-\(k).jsonl")
        #expect(podOut.keys.sorted() == pod.ids, "pod \(k) judged \(podOut.keys.sorted()), its shard is \(pod.ids)")
        #expect(podOut.values.allSatisfy { $0["status"] as? String == "ok" && $0["verdict_source"] as? String == "exact" }, "\(podOut)")

        let task = try Self.shardInput(k: k, n: tasks, take: 1)
        let ranTask = try ChildProcess.run("/bin/bash", [Self.deploy.appendingPathComponent("slurm/judge-array.sbatch").path,
                                                         "--explain", "none", "--max-attempts", "2"],
                                           environment: environment.merging([
                                               "THEMIS_WORK": task.path, "THEMIS_JUDGE_URL": server.base + "/v1",
                                               "SLURM_ARRAY_TASK_ID": String(k), "SLURM_ARRAY_TASK_COUNT": String(tasks),
                                           ]) { $1 }, limit: Budget.limit(measured: 20))
        #expect(ranTask.termination.status == 0, "array task \(k): \(ranTask.stderr)")
        let taskOut = try Self.byID(task.path + "/judged/shard-\(k).jsonl")
        #expect(taskOut.keys.sorted() == task.ids, "array task \(k) judged \(taskOut.keys.sorted()), its shard is \(task.ids)")
        #expect(taskOut.values.allSatisfy { $0["status"] as? String == "ok" && $0["verdict_source"] as? String == "exact" }, "\(taskOut)")
    }
}
