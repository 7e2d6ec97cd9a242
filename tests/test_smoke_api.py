def test_plans_are_public(graphql):
    data = graphql("{ plans { code } }")
    assert [p["code"] for p in data["plans"]] == ["free", "email", "omnichannel", "custom"]
