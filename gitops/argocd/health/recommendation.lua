-- Argo CD health check for tailor.dev/v1alpha1 Recommendation (status.phase, docs/api.md).
-- Healthy: UpToDate, Applied, and Pending - advice waiting for a person (or advice only) is
--   not a fault; the message says which revision awaits approval.
-- Progressing: Approved and Applying (a change is on its way or being verified), a spec
--   (an approval from Git) the controller has not seen yet, or no status yet.
-- Degraded: Blocked, RolledBack and Failed, with the controller's message.
-- Unknown: a phase this script does not know.
local hs = {status = "Progressing", message = "Waiting for the first analysis"}
local st = obj.status
if st == nil or st.phase == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and st.observedGeneration ~= nil and st.observedGeneration < generation then
  hs.message = "Waiting for the Tailor controller to see generation " .. tostring(generation)
  return hs
end

-- The message of the first condition, in this order, that does not hold.
local function reason(types)
  if st.conditions == nil then
    return nil
  end
  for _, t in ipairs(types) do
    for _, c in ipairs(st.conditions) do
      if c.type == t and c.status ~= "True" and c.message ~= nil and c.message ~= "" then
        return c.message
      end
    end
  end
  return nil
end

local revision = ""
if st.revision ~= nil then
  revision = " (revision " .. tostring(st.revision) .. ")"
end
local phase = st.phase
local detail = nil
if phase == "UpToDate" or phase == "Applied" then
  hs.status = "Healthy"
  detail = st.explanation
elseif phase == "Pending" then
  hs.status = "Healthy"
  detail = reason({"Approved", "ApprovalCurrent", "Remediation"}) or "awaiting approval"
elseif phase == "Approved" or phase == "Applying" then
  hs.status = "Progressing"
  detail = reason({"Applied", "Remediation", "Verified"})
elseif phase == "Blocked" or phase == "RolledBack" or phase == "Failed" then
  hs.status = "Degraded"
  detail = reason({"Applied", "Remediation", "Verified", "Approved", "Ready"}) or st.explanation
else
  hs.status = "Unknown"
  detail = "unknown phase"
end
hs.message = phase .. revision
if detail ~= nil and detail ~= "" then
  hs.message = hs.message .. ": " .. detail
end
return hs
