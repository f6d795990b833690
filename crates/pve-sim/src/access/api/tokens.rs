//! `/access/users/{userid}/token`: a user's API tokens (list, create with its secret, read,
//! update, delete).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::formats::check_formats;
use super::perms::user_must_exist;
use super::{acc, change, failed, opt_bool, opt_u64, required};
use crate::access::{AccessError, Token};
use crate::error::ApiError;
use crate::router::{Ctx, Reply};

/// A token's info: `privsep`, `expire`, `comment`.
pub(super) fn token_json(t: &Token) -> Value {
    let mut m = Map::new();
    m.insert("privsep".into(), json!(u8::from(t.privsep)));
    m.insert("expire".into(), json!(t.expire));
    if let Some(c) = &t.comment {
        m.insert("comment".into(), json!(c));
    }
    Value::Object(m)
}

/// A user's tokens as a list: each token's info with its `tokenid`.
pub(super) fn token_list_json(tokens: &BTreeMap<String, Token>) -> Vec<Value> {
    tokens
        .iter()
        .map(|(name, t)| {
            let mut v = token_json(t);
            if let Value::Object(o) = &mut v {
                o.insert("tokenid".into(), json!(name));
            }
            v
        })
        .collect()
}

/// `GET /access/users/{userid}/token`.
pub(super) fn list_tokens(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let userid = required(ctx, "userid")?;
    check_formats(ctx, "GET", "/access/users/{userid}/token")?;
    let user = acc(ctx)
        .user(&userid)
        .ok_or_else(|| ApiError::internal(AccessError::NoSuchUser(userid.clone())))?;
    Ok(Value::Array(token_list_json(&user.tokens)).into())
}

/// The token named by the path, or PVE's `no such token` error.
fn path_token(ctx: &Ctx<'_>) -> Result<(String, String), ApiError> {
    let userid = required(ctx, "userid")?;
    let tokenid = required(ctx, "tokenid")?;
    Ok((userid, tokenid))
}

/// `GET /access/users/{userid}/token/{tokenid}`.
pub(super) fn read_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "GET", "/access/users/{userid}/token/{tokenid}")?;
    token_must_exist(ctx, &userid, &tokenid)?;
    let Some(token) = acc(ctx).token(&userid, &tokenid) else {
        return Ok(Value::Null.into());
    };
    Ok(token_json(token).into())
}

/// `POST /access/users/{userid}/token/{tokenid}`: answers `full-tokenid`, `info` and `value`.
pub(super) fn create_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "POST", "/access/users/{userid}/token/{tokenid}")?;
    user_must_exist(ctx, &userid)?;
    if acc(ctx).token(&userid, &tokenid).is_some() {
        return Err(ApiError::param("tokenid", "Token already exists."));
    }
    let privsep = opt_bool(ctx, "privsep");
    let expire = opt_u64(ctx, "expire");
    let comment = ctx.params.str("comment");
    let value = change(ctx, |a| {
        a.token_add(&userid, &tokenid, privsep, expire, comment.as_deref())
    })
    .map_err(|e| failed("generating token failed", e))?;
    let mut info = Map::new();
    // PVE echoes given parameters as it received them (strings from a form body); only the
    // default privsep is a number.
    match privsep {
        Some(p) => info.insert("privsep".into(), json!(u8::from(p).to_string())),
        None => info.insert("privsep".into(), json!(1)),
    };
    if let Some(e) = expire {
        info.insert("expire".into(), json!(e.to_string()));
    }
    if let Some(c) = comment.filter(|c| !c.is_empty()) {
        info.insert("comment".into(), json!(c));
    }
    Ok(json!({
        "full-tokenid": format!("{userid}!{tokenid}"),
        "info": info,
        "value": value,
    })
    .into())
}

/// The token named by the path must exist (`check_token_exist`, a plain 500).
fn token_must_exist(ctx: &Ctx<'_>, userid: &str, tokenid: &str) -> Result<(), ApiError> {
    user_must_exist(ctx, userid)?;
    match acc(ctx).token(userid, tokenid) {
        Some(_) => Ok(()),
        None => Err(ApiError::internal(AccessError::NoSuchToken {
            user: userid.to_string(),
            token: tokenid.to_string(),
        })),
    }
}

/// `PUT /access/users/{userid}/token/{tokenid}`: answers the updated token info.
pub(super) fn update_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "PUT", "/access/users/{userid}/token/{tokenid}")?;
    token_must_exist(ctx, &userid, &tokenid)?;
    let privsep = opt_bool(ctx, "privsep");
    let expire = opt_u64(ctx, "expire");
    let comment = ctx.params.str("comment");
    change(ctx, |a| {
        a.token_modify(&userid, &tokenid, privsep, expire, comment.as_deref())
    })
    .map_err(|e| failed("updating token info failed", e))?;
    let token = acc(ctx)
        .token(&userid, &tokenid)
        .map(token_json)
        .unwrap_or(Value::Null);
    Ok(token.into())
}

/// `DELETE /access/users/{userid}/token/{tokenid}`.
pub(super) fn delete_token(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let (userid, tokenid) = path_token(ctx)?;
    check_formats(ctx, "DELETE", "/access/users/{userid}/token/{tokenid}")?;
    token_must_exist(ctx, &userid, &tokenid)?;
    change(ctx, |a| a.token_remove(&userid, &tokenid))
        .map_err(|e| failed("deleting token failed", e))?;
    Ok(Value::Null.into())
}
