-- Argo CD health check for tailor.dev/v1alpha1 OptimizationPolicy.
-- Healthy: Ready=True for the current generation. Degraded: Ready=False for the current
-- generation, with the controller's message (it names the field or endpoint at fault).
-- Progressing: anything else - no status yet, a spec the controller has not seen yet (so a
-- fix pushed to Git shows as Progressing, not as the old failure), or Ready=Unknown.
local hs = {status = "Progressing", message = "Waiting for the Tailor controller"}
local generation = obj.metadata and obj.metadata.generation
local st = obj.status
if st == nil then
  return hs
end
if generation ~= nil and st.observedGeneration ~= generation then
  hs.message = "Waiting for the Tailor controller to analyse generation " .. tostring(generation)
  return hs
end
local ready = nil
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  return hs
end
local text = ready.message or ""
if ready.reason ~= nil and ready.reason ~= "" then
  text = ready.reason .. ": " .. text
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = text
else
  hs.message = text
end
return hs
