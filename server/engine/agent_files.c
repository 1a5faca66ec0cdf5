/* agent_files.c — see agent_files.h.  Placeholder until it lands. */
#include "agent_files.h"
