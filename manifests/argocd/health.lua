-- Argo CD health check for modelrollout.io/ModelDeployment (Lua 5.1, gopher-lua).
-- Order: the operator must have seen the latest spec (observedGeneration) before its phase
-- means anything; then Degraded; then any pause waiting on a person is Suspended; a timed
-- pause is still Progressing. A known phase never maps to Unknown.
local hs = {}

local function current_step(obj)
  local status = obj.status
  if obj.spec == nil or obj.spec.strategy == nil or obj.spec.strategy.canary == nil then
    return nil
  end
  local steps = obj.spec.strategy.canary.steps
  if steps == nil or status.currentStepIndex == nil then
    return nil
  end
  return steps[status.currentStepIndex + 1] -- Lua tables are 1-based
end

-- A pause ends by itself only when it is a pause step with a duration.
local function waits_on_a_person(obj)
  local reason = obj.status.pauseReason
  if reason ~= nil and reason ~= "PauseStep" then
    return true
  end
  local step = current_step(obj)
  if step ~= nil and step.pause ~= nil and step.pause.duration ~= nil then
    return false
  end
  return true
end

local function describe(obj, fallback)
  local message = obj.status.message
  if message ~= nil and message ~= "" then
    return message
  end
  return fallback
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = obj.status.phase

if phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = describe(obj, "Rollout failed or was aborted")
  return hs
end

if obj.spec ~= nil and obj.spec.paused == true and phase ~= "Healthy" then
  hs.status = "Suspended"
  hs.message = describe(obj, "Paused: spec.paused is true")
  return hs
end

if phase == "Paused" then
  if waits_on_a_person(obj) then
    hs.status = "Suspended"
    hs.message = describe(obj, "Paused: waiting for promote")
  else
    hs.status = "Progressing"
    hs.message = describe(obj, "Pausing before the next step")
  end
  return hs
end

-- Monitoring after promotion (spec.monitoring): a breached check makes the serving model
-- Degraded even while the rollout itself is done.
local function breached(obj)
  local conditions = obj.status.conditions
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == "ModelHealthy" and c.status == "False" then
      return c
    end
  end
  return nil
end

if phase == "Healthy" then
  local breach = breached(obj)
  if breach ~= nil then
    hs.status = "Degraded"
    hs.message = "Monitoring: " .. tostring(breach.message or breach.reason)
    return hs
  end
  hs.status = "Healthy"
  hs.message = describe(obj, "The stable revision serves all traffic")
  return hs
end

if phase == nil or phase == "" or phase == "Pending" or phase == "Validating"
    or phase == "Progressing" then
  hs.status = "Progressing"
  hs.message = describe(obj, "Rollout in progress")
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
