#pragma once
// SIGINT handling: the first Ctrl-C asks the run to stop (agents see AgentContext::cancelled(), the
// executor stops before the next stage and leaves the run resumable); a second one kills the
// process the default way.

namespace profagent::kernel {

void install_interrupt_handler();
bool interrupt_requested();
void request_interrupt();  // what the handler does; also for tests
void clear_interrupt();

}  // namespace profagent::kernel
