-- resume: continue a rollout frozen by pause.
obj.spec.paused = false
return obj
