-- promote: a new request token in status.promote (the operator acts once per new token).
-- The object's resourceVersion is new after every change, so it makes a fresh token;
-- re-running the action on an unchanged object is harmless (same token, no second act).
if obj.status == nil then
  obj.status = {}
end
obj.status.promote = "argocd-" .. obj.metadata.resourceVersion
return obj
