from tests.helpers import Api


async def test_typename_answers(api: Api) -> None:
    assert await api.gql("{ __typename }") == {"__typename": "Query"}
