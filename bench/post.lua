-- POST one ~100-byte row per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"Kim Minji","email":"minji@example.com","city":"Seoul","note":"benchmark row"}'
