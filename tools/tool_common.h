// What every tool's main shares: exit codes, error printing, common client flags.
//
// Exit codes (documented in every man page):
//   0  success                        3  bad input (a line, record or field was rejected)
//   1  failure (server, I/O, network) 4  the named stream or group does not exist
//   2  usage error (bad flags)
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "client/client.h"
#include "util/status.h"

namespace streamkit::tools {

enum Exit : int { kExitOk = 0, kExitFailure = 1, kExitUsage = 2, kExitBadInput = 3, kExitNotFound = 4 };

int ExitCodeFor(const Status& s);
// Prints "TOOL: MESSAGE" on stderr and returns the exit code for s.
int Fail(const char* tool, const Status& s);
int FailMsg(const char* tool, int code, const std::string& msg);

// --socket, --data, --no-autostart.
void AddClientFlags(CLI::App& app, client::ConnectOptions* opts, bool* no_autostart);
// --version prints "TOOL (streamkit) VERSION".
void AddVersionFlag(CLI::App& app, const char* tool);
// Parses argv; returns -1 to go on, else the exit code (help: 0, misuse: 2 with a hint).
int Parse(CLI::App& app, int argc, char** argv, const char* tool);

// SIGPIPE ignored: a closed pipe becomes EPIPE on write, handled as a clean end.
void IgnoreSigpipe();

// SIGINT/SIGTERM set a flag instead of killing the process, so a long-running tool
// can finish what it is doing (an append, a delivery) and exit cleanly.
void CatchStopSignals();
bool StopRequested();

// Keeps freed memory in the process heap for the next buffer of its size instead of
// handing it back to the kernel (glibc returns chunks over 128 KiB at once). Batches
// and fetch answers of MiBs come and go all the time, and faulting fresh pages in
// costs more than the copying on virtual machines (peers README: ~11 us per 4 KiB).
// The heap stays bounded by the tool's own peak.
void KeepFreedMemory();

// Runs the calling thread, and the threads it starts later, under SCHED_BATCH (Linux),
// unless STREAMKIT_SCHED=normal or the tool was started with a policy other than the
// default one (chrt, a service manager): theirs is kept. SCHED_BATCH gives the same
// share of the CPU as the default policy; it only stops a thread that is woken from
// preempting the thread that woke it. In a pipeline (writer | stream-put, stream-serve,
// stream-tail -f | reader) the waker is about to sleep: letting it finish keeps the
// woken process on the same CPU, where waking it costs a context switch, instead of
// sending it to an idle CPU, which on virtual machines costs 30-100 us more
// (README, "Follow latency"). Call at the top of main, before any thread starts.
void UseBatchScheduling(const char* tool);
// Opens /dev/null on whichever of descriptors 0, 1 and 2 is closed (`stream-put <&-`),
// so a socket or file the tool opens later never takes stdin's or stdout's number and
// is read or written as data. Call first thing in main.
void EnsureStdFds();
// In a forked child, before exec: the policy the tool was started with (commands a
// tool runs for the user do not inherit SCHED_BATCH).
void RestoreSchedulingInChild();

}  // namespace streamkit::tools
