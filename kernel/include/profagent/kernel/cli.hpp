#pragma once
// The `profagent-run` command line. Exit codes: 0 ok, 1 run failed, 2 invalid workflow, config or
// usage, 3 plugin load error, 130 interrupted (SIGINT; the run directory can be resumed).

namespace profagent::kernel {

constexpr int kExitOk = 0;
constexpr int kExitRunFailed = 1;
constexpr int kExitInvalid = 2;
constexpr int kExitPluginError = 3;
constexpr int kExitInterrupted = 130;

int run_cli(int argc, char** argv);

}  // namespace profagent::kernel
