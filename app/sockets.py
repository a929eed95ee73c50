"""Helpers for the WebSocket handlers: wait for something without missing that the client left."""
from __future__ import annotations

import asyncio

from fastapi import WebSocket, WebSocketDisconnect

CLOSED = object()  # what `until_closed` returns when the client went away first


async def until_closed(ws: WebSocket, awaitable):
    """The result of `awaitable`, or CLOSED if the client disconnects (or the server, shutting
    down, closes the socket) first; messages the client sends meanwhile are ignored. A handler
    that only waited on its own queue would never learn that its client left, and would keep the
    server from shutting down."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            receiver = asyncio.ensure_future(ws.receive())
            done, _ = await asyncio.wait({task, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:  # looked at first: a disconnect read here must not be lost
                try:
                    if receiver.result()["type"] == "websocket.disconnect":
                        return CLOSED
                except (WebSocketDisconnect, RuntimeError):  # the socket was already closed
                    return CLOSED
            else:
                receiver.cancel()
            if task in done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
