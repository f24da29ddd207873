#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// COMMAND of `tokentap run`, started with `posix_spawnp` in tokentap's own process group (no
/// `POSIX_SPAWN_SETPGROUP`), so it keeps the terminal: it can read from it, and Ctrl-C reaches it
/// (`Foundation.Process` would put it in a background group of its own).
public struct ChildProcess: Sendable {
    /// The command's process id.
    public let pid: pid_t

    /// Why a command could not start; `exitStatus` is the shell's convention (127, 126).
    public enum SpawnError: Error, CustomStringConvertible {
        case notFound(String)
        case notExecutable(String, String)

        public var exitStatus: Int32 {
            switch self {
            case .notFound: return 127
            case .notExecutable: return 126
            }
        }

        public var description: String {
            switch self {
            case .notFound(let name):
                return name.contains("/") ? "\(name): no such file" : "\(name): command not found in PATH"
            case .notExecutable(let name, let reason):
                return "\(name): cannot execute (\(reason))"
            }
        }
    }

    /// Starts `arguments[0]` (searched in PATH when it has no `/`) with `environment`. Every signal
    /// gets its default action in the child (tokentap ignores some), and no signal is blocked;
    /// descriptors other than 0, 1, 2 are closed.
    ///
    /// - Parameters:
    ///   - newProcessGroup: start the child in a process group of its own (its pid is the group's
    ///     id), away from the terminal's signals: `tokentap browser` ends the whole group with
    ///     ``endGroup(grace:)``.
    ///   - input: a file opened read-only as the child's stdin (nil: tokentap's).
    ///   - output: a file created (mode 0600) as the child's stdout and stderr (nil: tokentap's).
    public static func spawn(_ arguments: [String], environment: [String: String], newProcessGroup: Bool = false,
                             input: String? = nil, output: String? = nil) throws -> ChildProcess {
        precondition(!arguments.isEmpty)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in 1..<32 where sig != SIGKILL && sig != SIGSTOP { sigaddset(&defaults, Int32(sig)) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        #if canImport(Glibc)
        // glibc ≥ 2.34; not visible to Swift's Glibc module, so looked up at run time.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        #endif

        if let input { posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0) }
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            switch result {
            case ENOENT, ENOTDIR: throw SpawnError.notFound(arguments[0])
            default: throw SpawnError.notExecutable(arguments[0], String(cString: strerror(result)))
            }
        }
        return ChildProcess(pid: pid)
    }

    /// Waits for the child (on a thread of its own) and returns its status the shell's way: the
    /// exit code, or 128 + N when signal N ended it.
    public func wait() async -> Int32 {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 {
                    if errno != EINTR {
                        continuation.resume(returning: 127)
                        return
                    }
                }
                let low = status & 0x7f
                if low == 0 {
                    continuation.resume(returning: (status >> 8) & 0xff)
                } else {
                    continuation.resume(returning: 128 + low)
                }
            }
        }
    }

    /// Sends `signal` to the child.
    public func send(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Whether any process of the child's process group is still there (a zombie counts).
    public var groupExists: Bool {
        kill(-pid, 0) == 0 || errno == EPERM
    }

    /// Ends the process group of a child started with `newProcessGroup`: SIGTERM to the group,
    /// then, when processes are left after `grace` seconds, SIGKILL. Reaps every member that is
    /// tokentap's child (with ``becomeSubreaper()`` that includes orphaned grandchildren), and
    /// returns once the group is empty (or 5 s after SIGKILL). The child itself must have been
    /// waited for (``wait()``) before: this reaps by group, not by pid.
    public func endGroup(grace: Double = 5) async {
        let group = pid
        if groupExists { kill(-group, SIGTERM) }
        var killed = false
        let start = Date()
        while true {
            // Reap what has exited (zombies are members of the group until reaped).
            var status: Int32 = 0
            while waitpid(-group, &status, WNOHANG) > 0 {}
            if !groupExists { return }
            let waited = Date().timeIntervalSince(start)
            if !killed && waited >= grace {
                kill(-group, SIGKILL)
                killed = true
            } else if waited >= grace + 5 {
                return
            }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// Makes tokentap the "child subreaper" (Linux `PR_SET_CHILD_SUBREAPER`): processes orphaned
    /// by its children are re-parented to it instead of init, so ``endGroup(grace:)`` can reap
    /// them and know they are gone. Returns false where that is not available.
    @discardableResult
    public static func becomeSubreaper() -> Bool {
        #if os(Linux)
        // prctl is variadic in C (not callable from Swift): looked up and called with fixed arguments.
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(nil, "prctl") else { return false }
        let PR_SET_CHILD_SUBREAPER: Int32 = 36
        return unsafeBitCast(symbol, to: Prctl.self)(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        #else
        return false
        #endif
    }
}
