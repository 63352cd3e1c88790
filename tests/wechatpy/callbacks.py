"""Signs and encrypts WeChat callbacks with wechatpy, an implementation
independent of Madoguchi's, for the end-to-end test that delivers them.

Reads one JSON object on stdin:
  {"token", "encoding_aes_key", "app_id", "original_id", "timestamp",
   "messages": [xml, ...]}
and writes a JSON list on stdout, one entry per message and mode:
  {"mode": "plaintext" | "compatible" | "secure", "query": {...}, "body": "..."}
plus one {"mode": "verify", "query": {...}} for URL verification.
"""

import json
import sys
import uuid
import xml.etree.ElementTree as ElementTree

from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner


def signature(*parts):
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def main():
    request = json.load(sys.stdin)
    token, timestamp = request["token"], str(request["timestamp"])
    crypto = WeChatCrypto(token, request["encoding_aes_key"], request["app_id"])
    out = []
    nonce = uuid.uuid4().hex[:10]
    out.append({
        "mode": "verify",
        "query": {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                  "echostr": "wechatpy-" + nonce},
    })
    for message in request["messages"]:
        nonce = uuid.uuid4().hex[:10]
        plain_query = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                       "openid": "o"}
        out.append({"mode": "plaintext", "query": plain_query, "body": message})
        for mode in ("secure", "compatible"):
            # WeChat signs every delivery with a nonce of its own.
            nonce = uuid.uuid4().hex[:10]
            # wechatpy writes a passive reply: take its ciphertext and
            # signature into the envelope WeChat pushes.
            reply = ElementTree.fromstring(crypto.encrypt_message(message, nonce, timestamp))
            encrypted, msg_signature = reply.findtext("Encrypt"), reply.findtext("MsgSignature")
            query = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                     "openid": "o", "encrypt_type": "aes", "msg_signature": msg_signature}
            if mode == "secure":
                body = "<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt></xml>" % (
                    request["original_id"], encrypted)
            else:
                body = message.replace("<xml>", "<xml><Encrypt><![CDATA[%s]]></Encrypt>" % encrypted, 1)
            out.append({"mode": mode, "query": query, "body": body})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
