-- Which actions Argo CD offers for a ModelDeployment, and which are greyed out now.
local actions = {}
local status = obj.status or {}
local phase = status.phase
local in_flight = status.canaryRevision ~= nil
  and (phase == "Pending" or phase == "Validating" or phase == "Progressing" or phase == "Paused")
local paused = obj.spec ~= nil and obj.spec.paused == true

actions["promote"] = {["disabled"] = not in_flight}
actions["promote-full"] = {["disabled"] = not in_flight}
actions["abort"] = {["disabled"] = not in_flight}
actions["retry"] = {["disabled"] = phase ~= "Degraded"}
actions["pause"] = {["disabled"] = paused}
actions["resume"] = {["disabled"] = not paused}
return actions
