import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn`, its output going to files. Foundation's
/// `Process.run` walks `/proc/self/fd` while other tests in the same process open and close
/// hundreds of sockets, and that race crashed the test process once; `posix_spawn` does not
/// walk descriptors (ours are close-on-exec).
final class Spawned: Sendable {
    let pid: pid_t

    struct Failed: Error, CustomStringConvertible {
        var code: Int32
        var description: String { "posix_spawn failed: \(String(cString: strerror(code)))" }
    }

    init(
        _ executable: String, _ arguments: [String], directory: String? = nil, environment: [String: String] = [:],
        stdout: String = "/dev/null", stderr: String = "/dev/null"
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // Nothing else of this process's goes to the child: a socket of an in-process gateway
        // inherited by a browser that runs for seconds would keep that connection open after
        // the gateway closed it (a test waiting for the close would wait for the browser).
        // (glibc 2.34's `posix_spawn_file_actions_addclosefrom_np`, not in Swift's Glibc module.)
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        let env = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }.map { "\($0)=\($1)" }
        // A working directory through the shell (glibc's addchdir is not in Swift's Glibc module).
        let command =
            directory.map { ["/bin/sh", "-c", #"cd "$0" && exec "$@""#, $0, executable] } ?? [executable]
        var argv: [UnsafeMutablePointer<CChar>?] = (command + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let code = posix_spawnp(&pid, command[0], &actions, nil, &argv, &envp)
        guard code == 0 else { throw Failed(code: code) }
        self.pid = pid
    }

    /// Waits for the exit; the exit status, or 128 + signal when killed.
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// ``run(_:_:directory:)`` waited for on a thread of its own: a test awaiting a child that
    /// calls back into the in-process gateway must not block one of the few threads of Swift's
    /// cooperative pool (two on this machine; two such tests at once deadlocked the suite).
    static func finish(
        _ executable: String, _ arguments: [String], directory: String? = nil
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await onThread { Result { try run(executable, arguments, directory: directory) } }.get()
    }

    /// The path of a script in Tests/Clients (the official SDKs' drivers).
    static func clientScript(_ name: String) -> String {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Clients").appendingPathComponent(name).path
    }

    /// Runs to completion and returns the exit status with what it wrote. Blocks its thread.
    static func run(
        _ executable: String, _ arguments: [String], directory: String? = nil
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("spawned-\(UUID().uuidString)")
        let out = base.path + ".out"
        let err = base.path + ".err"
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: err)
        }
        let child = try Spawned(executable, arguments, directory: directory, stdout: out, stderr: err)
        let status = child.wait()
        let read = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return (status, read(out), read(err))
    }
}
