-- pause: freeze the rollout where it is (traffic stays as it is).
obj.spec.paused = true
return obj
