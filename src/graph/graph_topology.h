// The link structure of a workflow: upstream closures and dependency cycles.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "graph/workflow.h"

namespace df::graph {

// `roots` and every node they depend on through well-formed links to existing nodes.
std::set<std::string> upstream_closure(const Workflow& workflow,
                                       const std::vector<std::string>& roots);

// The groups of nodes among `nodes` that depend on each other through links (a node linked to
// itself is a group of one). Each group is sorted; groups are in order of their first id.
std::vector<std::vector<std::string>> dependency_cycles(const Workflow& workflow,
                                                        const std::set<std::string>& nodes);

}  // namespace df::graph
