//! The gRPC calls to gobgpd, over tonic's generic client with prost's
//! codec (no generated stubs: the method paths are written here).

use tonic::codec::{ProstCodec, Streaming};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use super::api;

const SERVICE: &str = "/apipb.GobgpApi/";

/// Why a call to gobgpd failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad gobgpd address {addr}: {source}")]
    Address {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("cannot connect to gobgpd at {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("gobgpd refused {call}: {status}")]
    Call {
        call: &'static str,
        status: tonic::Status,
    },
    #[error("gobgpd connection broke: {0}")]
    Transport(tonic::transport::Error),
}

#[derive(Clone)]
pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
}

impl Client {
    /// Connects to gobgpd's gRPC listener `addr` (`HOST:PORT`).
    pub async fn connect(addr: &str) -> Result<Client, ClientError> {
        let ep = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|source| ClientError::Address {
                addr: addr.to_string(),
                source,
            })?
            .connect_timeout(std::time::Duration::from_secs(2))
            .tcp_nodelay(true);
        let ch = ep.connect().await.map_err(|source| ClientError::Connect {
            addr: addr.to_string(),
            source,
        })?;
        Ok(Client {
            grpc: tonic::client::Grpc::new(ch),
        })
    }

    async fn unary<Q, R>(&mut self, call: &'static str, req: Q) -> Result<R, ClientError>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc.ready().await.map_err(ClientError::Transport)?;
        let path = PathAndQuery::try_from(format!("{SERVICE}{call}")).expect("a valid path");
        let codec: ProstCodec<Q, R> = ProstCodec::default();
        self.grpc
            .unary(tonic::Request::new(req), path, codec)
            .await
            .map(|r| r.into_inner())
            .map_err(|status| ClientError::Call { call, status })
    }

    /// Adds a path to the global RIB; returns its uuid.
    pub async fn add_path(&mut self, path: api::Path) -> Result<Vec<u8>, ClientError> {
        let r: api::AddPathResponse = self
            .unary(
                "AddPath",
                api::AddPathRequest {
                    table_type: api::TABLE_GLOBAL,
                    vrf_id: String::new(),
                    path: Some(path),
                },
            )
            .await?;
        Ok(r.uuid)
    }

    /// Withdraws the path `add_path` returned `uuid` for.
    pub async fn delete_path(&mut self, uuid: Vec<u8>) -> Result<(), ClientError> {
        let _: api::Empty = self
            .unary(
                "DeletePath",
                api::DeletePathRequest {
                    table_type: api::TABLE_GLOBAL,
                    vrf_id: String::new(),
                    family: Some(api::Family::evpn()),
                    path: None,
                    uuid,
                },
            )
            .await?;
        Ok(())
    }

    /// Best-path changes, beginning with the whole current table.
    pub async fn watch_best(&mut self) -> Result<Streaming<api::WatchEventResponse>, ClientError> {
        self.grpc.ready().await.map_err(ClientError::Transport)?;
        let codec: ProstCodec<api::WatchEventRequest, api::WatchEventResponse> =
            ProstCodec::default();
        let req = api::WatchEventRequest {
            table: Some(api::WatchTable {
                filters: vec![api::WatchFilter {
                    r#type: api::FILTER_BEST,
                    init: true,
                }],
            }),
        };
        self.grpc
            .server_streaming(
                tonic::Request::new(req),
                PathAndQuery::from_static("/apipb.GobgpApi/WatchEvent"),
                codec,
            )
            .await
            .map(|r| r.into_inner())
            .map_err(|status| ClientError::Call {
                call: "WatchEvent",
                status,
            })
    }
}
