//! Choosing the subprotocol from the client's `Sec-WebSocket-Protocol` header.

use crate::close::Close;

/// The two GraphQL-over-WebSocket protocols served on one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subprotocol {
    /// `graphql-transport-ws` (enisdenjo/graphql-ws, the GraphQL over WebSocket RFC).
    GraphqlTransportWs,
    /// `graphql-ws`, the legacy Apollo subscriptions-transport-ws protocol.
    GraphqlWs,
}

impl Subprotocol {
    /// The subprotocol token as it appears in `Sec-WebSocket-Protocol`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Subprotocol::GraphqlTransportWs => "graphql-transport-ws",
            Subprotocol::GraphqlWs => "graphql-ws",
        }
    }
}

/// The outcome of a successful negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol to speak on this socket.
    pub subprotocol: Subprotocol,
    /// The value for the 101 response's `Sec-WebSocket-Protocol`, if one must be sent.
    pub echo: Option<&'static str>,
}

/// Picks the protocol from the `Sec-WebSocket-Protocol` header (several header lines joined
/// with `,`): `graphql-transport-ws` wins when offered, then `graphql-ws`; an absent or empty
/// header means `graphql-transport-ws`; anything else is 4406 `Subprotocol not acceptable`.
pub fn negotiate(header: Option<&str>) -> Result<Negotiated, Close> {
    let mut offered = header
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .peekable();
    if offered.peek().is_none() {
        // RFC 6455 §4.1: a client that offered no subprotocol must fail the connection if the
        // server names one, so the default is spoken but not echoed.
        return Ok(Negotiated {
            subprotocol: Subprotocol::GraphqlTransportWs,
            echo: None,
        });
    }
    let (mut transport_ws, mut legacy) = (false, false);
    for token in offered {
        transport_ws |= token == Subprotocol::GraphqlTransportWs.as_str();
        legacy |= token == Subprotocol::GraphqlWs.as_str();
    }
    let subprotocol = match (transport_ws, legacy) {
        (true, _) => Subprotocol::GraphqlTransportWs,
        (false, true) => Subprotocol::GraphqlWs,
        (false, false) => return Err(Close::subprotocol_not_acceptable()),
    };
    Ok(Negotiated {
        subprotocol,
        echo: Some(subprotocol.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subprotocol::{GraphqlTransportWs as Modern, GraphqlWs as Legacy};

    /// `None` means refused with 4406.
    type Want = Option<(Subprotocol, Option<&'static str>)>;

    #[test]
    fn negotiation_table() {
        let cases: [(Option<&str>, Want); 12] = [
            (None, Some((Modern, None))),
            (Some(""), Some((Modern, None))),
            (Some(" , ,"), Some((Modern, None))),
            (
                Some("graphql-transport-ws"),
                Some((Modern, Some("graphql-transport-ws"))),
            ),
            (Some("graphql-ws"), Some((Legacy, Some("graphql-ws")))),
            (
                Some("graphql-ws, graphql-transport-ws"),
                Some((Modern, Some("graphql-transport-ws"))),
            ),
            (
                Some("graphql-transport-ws,graphql-ws"),
                Some((Modern, Some("graphql-transport-ws"))),
            ),
            (Some("foo, graphql-ws"), Some((Legacy, Some("graphql-ws")))),
            (Some("  graphql-ws  "), Some((Legacy, Some("graphql-ws")))),
            // 4406: a header naming neither protocol.
            (Some("foo"), None),
            (Some("graphql-sse, mqtt"), None),
            // Tokens are case-sensitive and must match whole.
            (Some("GraphQL-WS, graphql-ws-x"), None),
        ];
        for (header, want) in cases {
            let got = negotiate(header);
            match want {
                Some((subprotocol, echo)) => {
                    assert_eq!(
                        got,
                        Ok(Negotiated { subprotocol, echo }),
                        "header {header:?}"
                    )
                }
                None => {
                    let close = got.expect_err("must be refused");
                    assert_eq!(close.code(), 4406, "header {header:?}");
                    assert_eq!(close.reason(), "Subprotocol not acceptable");
                }
            }
        }
    }
}
