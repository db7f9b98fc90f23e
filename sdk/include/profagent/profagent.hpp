#pragma once
// Everything a plugin author needs (without LibTorch; see model_artifact.hpp for models).
#include "profagent/agent.hpp"
#include "profagent/artifact.hpp"
#include "profagent/config_schema.hpp"
#include "profagent/fs.hpp"
#include "profagent/json.hpp"
#include "profagent/llm.hpp"
#include "profagent/log.hpp"
#include "profagent/plugin.hpp"
#include "profagent/provider.hpp"
#include "profagent/status.hpp"
#include "profagent/version.hpp"
