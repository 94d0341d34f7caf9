"""The GraphQL steps of fulfilment, shared by the address, shipment and return tests."""

from __future__ import annotations

from typing import Any

from joycart.integrations.simulators.razorpay import RazorpaySimulator
from tests.api.test_cancellation import PaidOrder, paid_order
from tests.helpers import Account, Api

ADDRESS: dict[str, Any] = {
    "name": "Asha Rao",
    "phone": "98765 43210",
    "line1": "12, 4th Cross, MG Road",
    "city": "Bengaluru",
    "state": "KA",
    "pinCode": "560001",
}
ADDRESS_FIELDS = "id name phone line1 line2 city state stateName pinCode isDefault"
ADD_ADDRESS = f"""mutation($input: AddressInput!) {{ addAddress(input: $input) {{
  address {{ {ADDRESS_FIELDS} }} errors {{ code message field }} }} }}"""
UPDATE_ADDRESS = f"""mutation($id: ID!, $input: UpdateAddressInput!) {{
  updateAddress(id: $id, input: $input) {{
  address {{ {ADDRESS_FIELDS} }} errors {{ code message field }} }} }}"""
DELETE_ADDRESS = """mutation($id: ID!) { deleteAddress(id: $id) {
  deletedId errors { code message field } } }"""
ADDRESSES = f"{{ addresses {{ {ADDRESS_FIELDS} }} }}"
SET_ADDRESS = """mutation($o: ID!, $a: ID!) { setOrderShippingAddress(orderId: $o, addressId: $a) {
  order { id shippingAddress { name phone line1 city state pinCode } }
  errors { code message field } } }"""
CHECKOUT_TO = """mutation($key: String!, $address: ID) {
  checkout(idempotencyKey: $key, shippingAddressId: $address) {
    order { id status items { id quantity unitPrice { amount } }
            shippingAddress { name phone line1 line2 city state stateName pinCode }
            payment { razorpayOrderId } }
    errors { code message field } } }"""
SHIPMENT_FIELDS = """id status carrier trackingNumber shippedAt deliveredAt
  items { quantity orderItem { id status shippedQuantity deliveredQuantity } }"""
SHIP = f"""mutation($items: [ShipmentItemInput!]!, $carrier: String!, $tracking: String!) {{
  createShipment(items: $items, carrier: $carrier, trackingNumber: $tracking) {{
    shipment {{ {SHIPMENT_FIELDS} }} errors {{ code message field }} }} }}"""
DELIVER = f"""mutation($id: ID!) {{ markShipmentDelivered(shipmentId: $id) {{
  shipment {{ {SHIPMENT_FIELDS} }} errors {{ code message field }} }} }}"""
RETURN_FIELDS = """return { id status quantity reason rejectionReason restocked
    orderItem { id status returnRequestedQuantity returnedQuantity }
    refund { id status amount { amount } } }
  refund { id status amount { amount } quantity reason gatewayRefundId }
  errors { code message field }"""
REQUEST_RETURN = f"""mutation($id: ID!, $q: Int!, $r: String!) {{
  requestReturn(orderItemId: $id, quantity: $q, reason: $r) {{ {RETURN_FIELDS} }} }}"""
APPROVE_RETURN = f"""mutation($id: ID!) {{ approveReturn(returnId: $id) {{ {RETURN_FIELDS} }} }}"""
REJECT_RETURN = f"""mutation($id: ID!, $r: String!) {{
  rejectReturn(returnId: $id, reason: $r) {{ {RETURN_FIELDS} }} }}"""
RECEIVE_RETURN = f"""mutation($id: ID!, $restock: Boolean!) {{
  receiveReturn(returnId: $id, restock: $restock) {{ {RETURN_FIELDS} }} }}"""
ORDER_FULFILMENT = """query($id: ID!) { order(id: $id) { id status
  shippingAddress { name city pinCode }
  items { id status quantity cancelledQuantity shippedQuantity deliveredQuantity
          returnRequestedQuantity returnedQuantity returns { id status } }
  shipments { id status carrier trackingNumber items { quantity orderItem { id } } }
  returns { id status quantity orderItem { id } refund { status } }
  refunds { id status reason quantity amount { amount } orderItem { id } }
  events { kind fromStatus toStatus actor } } }"""


async def add_address(api: Api, who: Account, **changes: Any) -> dict[str, Any]:
    data = await api.gql(ADD_ADDRESS, {"input": {**ADDRESS, **changes}}, who.token)
    result: dict[str, Any] = data["addAddress"]
    return result


async def ship(
    api: Api, seller: Account, lines: list[tuple[str, int]], tracking: str = "DLV123456789"
) -> dict[str, Any]:
    items = [{"orderItemId": item_id, "quantity": q} for item_id, q in lines]
    data = await api.gql(
        SHIP, {"items": items, "carrier": "Delhivery", "tracking": tracking}, seller.token
    )
    result: dict[str, Any] = data["createShipment"]
    return result


async def deliver(api: Api, seller: Account, shipment_id: str) -> dict[str, Any]:
    data = await api.gql(DELIVER, {"id": shipment_id}, seller.token)
    result: dict[str, Any] = data["markShipmentDelivered"]
    return result


async def request_return(
    api: Api, buyer: Account, item_id: str, quantity: int, reason: str = "arrived damaged"
) -> dict[str, Any]:
    data = await api.gql(REQUEST_RETURN, {"id": item_id, "q": quantity, "r": reason}, buyer.token)
    result: dict[str, Any] = data["requestReturn"]
    return result


async def approve_return(api: Api, seller: Account, return_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await api.gql(APPROVE_RETURN, {"id": return_id}, seller.token))[
        "approveReturn"
    ]
    return result


async def receive_return(
    api: Api, seller: Account, return_id: str, restock: bool = True
) -> dict[str, Any]:
    data = await api.gql(RECEIVE_RETURN, {"id": return_id, "restock": restock}, seller.token)
    result: dict[str, Any] = data["receiveReturn"]
    return result


async def order_view(api: Api, who: Account, order_id: str) -> dict[str, Any] | None:
    data = await api.gql(ORDER_FULFILMENT, {"id": order_id}, who.token)
    order: dict[str, Any] | None = data["order"]
    return order


async def addressed_paid_order(
    api: Api, razorpay: RazorpaySimulator, quantities: tuple[int, ...] = (1, 2, 1)
) -> PaidOrder:
    """`paid_order` (three sellers, one item each), then the buyer chooses where it ships."""
    order = await paid_order(api, razorpay, quantities)
    address = await add_address(api, order.buyer)
    assert address["errors"] == [], address
    data = await api.gql(
        SET_ADDRESS, {"o": order.id, "a": address["address"]["id"]}, order.buyer.token
    )
    assert data["setOrderShippingAddress"]["errors"] == [], data
    return order


async def delivered(api: Api, order: PaidOrder, index: int, units: int) -> str:
    """Ship `units` of item `index` and deliver them; returns the shipment id."""
    item_id = order.items[index]["id"]
    shipped = await ship(api, order.sellers[index], [(item_id, units)])
    assert shipped["errors"] == [], shipped
    shipment_id: str = shipped["shipment"]["id"]
    arrived = await deliver(api, order.sellers[index], shipment_id)
    assert arrived["errors"] == [], arrived
    return shipment_id
