//! Ownership end to end (issue 12, "an unforgeable marker"): a VM is a request's only with its
//! full marker; partial markers, templates and duplicates are never adopted, changed or deleted,
//! and a deletion lets the finalizer go only once Proxmox confirms that the VM is gone.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::DeleteParams;
use kube::runtime::wait::await_condition;
use pve_client::api::qemu::VmConfigUpdate;
use pve_client::api::vmconfig::VmConfig;
use pve_operator::vmspec::Marker;
use pve_operator_api::{HasConditions, MachineRequest};
use pve_sim::RunningSim;
use pve_sim::access::{AclSubject, UserOptions};
use serde_json::json;

use crate::support::{Harness, small_spec, vmid_of, wait_for, wait_gone};

/// The simulator's template (`SimOptions` default).
const TEMPLATE: u32 = 9000;

/// Applies request `name` while the controller is stopped, so that VMs carrying its marker can
/// be arranged before it first reconciles; returns its marker.
async fn request_before_the_controller(h: &mut Harness, name: &str) -> Marker {
    h.crash_controller().await;
    h.apply(name, small_spec()).await;
    let request = h.requests().get(name).await.expect("request");
    Marker::new(
        request.uid().expect("uid"),
        h.namespace.clone(),
        name.to_string(),
    )
}

/// Creates a stopped VM directly in Proxmox (as root@pam), not through the controller.
async fn make_vm(h: &Harness, vmid: u32, config: VmConfig) {
    let config = VmConfig {
        name: Some(format!("made-by-hand-{vmid}")),
        memory_mib: Some(256),
        ..config
    };
    h.create_vm(vmid, &config).await;
}

/// Every VM's config digest, by VMID: what "untouched" is compared against.
async fn digests(h: &Harness) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for r in h.pve.cluster_resources(None).await.expect("resources") {
        if let (Some(vmid), Some(node)) = (r.vmid, r.node) {
            let config = h.pve.qemu_config(&node, vmid).await.expect("config");
            out.insert(vmid, config.digest);
        }
    }
    out
}

/// Waits until the request's Ready condition is False with `reason` and a message containing
/// `saying`, for the request's current generation (so that a condition from before a spec change
/// or the deletion does not count); returns the message.
async fn wait_not_ready(h: &Harness, name: &str, reason: &str, saying: &str) -> String {
    let reached = |obj: Option<&MachineRequest>| {
        obj.is_some_and(|o| {
            o.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Ready"
                        && c.status == "False"
                        && c.reason == reason
                        && c.message.contains(saying)
                        && c.observed_generation == o.metadata.generation
                })
            })
        })
    };
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        await_condition(h.requests(), name, reached),
    )
    .await;
    match result {
        Ok(Ok(Some(request))) => request
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.message)
            .unwrap_or_default(),
        other => {
            let now = h.requests().get_opt(name).await.ok().flatten();
            panic!(
                "{name}: no Ready=False {reason} saying {saying:?} ({:?}); status now: {:#?}",
                other.map(|r| r.map(|o| o.is_some())),
                now.and_then(|o| o.status)
            )
        }
    }
}

/// The notes of the Warning Events on `name` with `reason`.
async fn warnings(h: &Harness, name: &str, reason: &str) -> Vec<String> {
    h.events_about(name)
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test]
async fn a_partial_marker_is_never_adopted_or_deleted_and_no_vm_is_made_beside_it() {
    let mut h = Harness::start("partial-marker").await;
    let marker = request_before_the_controller(&mut h, "a").await;
    // VM 500 carries A's uid tag but not its description line; VM 501 carries the line (and
    // A's uid as SMBIOS uuid) but not the tag, and A never recorded VMID 501.
    make_vm(
        &h,
        500,
        VmConfig {
            tags: vec!["pve-operator".into(), marker.uid_tag()],
            ..VmConfig::default()
        },
    )
    .await;
    make_vm(
        &h,
        501,
        VmConfig {
            description: Some(marker.description_line()),
            smbios_uuid: Some(marker.uid.clone()),
            ..VmConfig::default()
        },
    )
    .await;
    let before = digests(&h).await;

    h.start_controller();
    let message = wait_not_ready(
        &h,
        "a",
        "MarkerMismatch",
        "VM 500 carries this request's uid tag but not its description marker line",
    )
    .await;
    assert!(!message.contains("501"), "{message}");
    let events = warnings(&h, "a", "MarkerMismatch").await;
    assert!(
        events.iter().any(|e| e.contains("VM 500")),
        "a Warning Event names VM 500: {events:?}"
    );
    assert_eq!(
        digests(&h).await,
        before,
        "nothing changed, nothing created"
    );

    h.delete_and_wait_gone("a").await;
    assert_eq!(
        digests(&h).await,
        before,
        "neither VM was deleted or changed by the deletion"
    );
    let events = warnings(&h, "a", "VmLeftAlone").await;
    assert!(
        events.iter().any(
            |e| e.contains("VM 500 carries this request's uid tag") && e.contains("left alone")
        ),
        "the deletion says VM 500 was left alone: {events:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_template_is_never_adopted_and_two_vms_with_the_tag_stop_everything_until_one_is_gone() {
    let mut h = Harness::start("duplicates").await;
    let marker = request_before_the_controller(&mut h, "a").await;
    // The template carries A's full marker: it is still never A's VM.
    let full = VmConfig {
        tags: vec!["pve-operator".into(), marker.uid_tag()],
        description: Some(marker.description_line()),
        smbios_uuid: Some(marker.uid.clone()),
        ..VmConfig::default()
    };
    h.pve
        .qemu_update_sync(
            "pve",
            TEMPLATE,
            &VmConfigUpdate::set(&full).expect("a valid update"),
        )
        .await
        .expect("the template takes A's marker");
    let template = digests(&h).await[&TEMPLATE].clone();

    h.start_controller();
    let own = vmid_of(&h.wait_ready("a").await);
    assert_ne!(own, TEMPLATE, "the template was not adopted");
    assert_eq!(
        digests(&h).await[&TEMPLATE],
        template,
        "the template is untouched"
    );

    // A second VM with A's uid tag (a copy with the whole marker but another SMBIOS uuid).
    make_vm(
        &h,
        600,
        VmConfig {
            smbios_uuid: Some("11111111-2222-3333-4444-555555555555".into()),
            ..full.clone()
        },
    )
    .await;
    let listed = format!("VMs {own}, 600 all carry this request's uid tag");
    let message = wait_not_ready(&h, "a", "DuplicateVms", &listed).await;
    assert!(!message.contains(&TEMPLATE.to_string()), "{message}");
    let events = warnings(&h, "a", "DuplicateVms").await;
    assert!(
        events.iter().any(|e| e.contains(&format!("{own}, 600"))),
        "a Warning Event lists both VMIDs: {events:?}"
    );
    let at_duplicate = digests(&h).await;
    // A spec change the controller would otherwise apply at once: it is not.
    let mut spec = small_spec();
    spec["memory"]["sizeMiB"] = json!(384);
    h.apply("a", spec).await;
    wait_not_ready(&h, "a", "DuplicateVms", &listed).await;
    assert_eq!(digests(&h).await, at_duplicate, "neither VM was touched");
    assert!(h.vm_running(own).await, "A's VM runs as before");

    // Once the copy is gone, A proceeds.
    h.destroy_vm(600).await;
    wait_for(
        &h.requests(),
        "a",
        "A to become Ready with the new spec",
        |o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.observed_generation == o.metadata.generation && s.is_ready())
        },
    )
    .await;
    assert_eq!(
        h.vm_config(own).await.and_then(|c| c.memory_mib()),
        Some(384)
    );

    // The same during deletion: with a copy, the finalizer stays and neither VM is touched.
    // (Made while the controller is down, so that only the deletion path sees it.)
    h.crash_controller().await;
    make_vm(
        &h,
        601,
        VmConfig {
            tags: vec![marker.uid_tag()],
            ..VmConfig::default()
        },
    )
    .await;
    let before_delete = digests(&h).await;
    h.requests()
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete accepted");
    h.start_controller();
    wait_not_ready(&h, "a", "DuplicateVms", &format!("VMs {own}, 601")).await;
    assert_eq!(digests(&h).await, before_delete, "neither VM touched");
    assert!(h.vm_running(own).await, "A's VM was not stopped");
    h.destroy_vm(601).await;
    wait_gone(&h.requests(), "a").await;
    let after = digests(&h).await;
    assert!(!after.contains_key(&own), "A's VM destroyed");
    assert_eq!(
        after.get(&TEMPLATE),
        Some(&template),
        "template kept, untouched"
    );
    h.stop().await;
}

/// The user and token the controller connects with in the visibility test.
const USER: &str = "operator@pve";
const TOKEN: &str = "ctl";

/// A token with every privilege on `/` (so that an ACL on one VM can take them away there).
fn admin_token(sim: &RunningSim) -> String {
    let secret = sim.with_state(|state| {
        state
            .access
            .user_add(USER, None, UserOptions::default())
            .expect("user");
        state
            .access
            .acl_modify("/", AclSubject::User(USER.into()), "Administrator", true)
            .expect("ACL");
        state
            .access
            .token_add(USER, TOKEN, Some(false), None, None)
            .expect("token")
    });
    format!(
        "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  tokenID: \"{USER}!{TOKEN}\"\n  tokenSecret: \"{secret}\"\n",
        sim.url(),
        sim.fingerprint(),
    )
}

/// Hides (or shows again) VM `vmid` from the controller's token.
fn hide_vm(sim: &RunningSim, vmid: u32, hidden: bool) {
    sim.with_state(|state| {
        let path = format!("/vms/{vmid}");
        let subject = AclSubject::User(USER.into());
        if hidden {
            state.access.acl_modify(&path, subject, "NoAccess", false)
        } else {
            state.access.acl_delete(&path, subject, "NoAccess")
        }
        .expect("ACL change");
    });
}

#[tokio::test]
async fn deleting_a_request_whose_vm_the_controller_cannot_see_keeps_the_finalizer() {
    let h =
        Harness::start_with_config("invisible", async |sim: &RunningSim| admin_token(sim)).await;
    h.apply("a", small_spec()).await;
    let own = vmid_of(&h.wait_ready("a").await);

    // The VM drops out of what the controller's token sees (the inventory no longer lists
    // it): the deletion must not take that for "gone".
    hide_vm(&h.sim, own, true);
    h.requests()
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let message = wait_not_ready(
        &h,
        "a",
        "MissingPrivilege",
        &format!("confirming that VM {own}"),
    )
    .await;
    assert!(message.contains("keeps its finalizer"), "{message}");
    assert!(h.vm_exists(own).await, "the VM is still there");
    let request = h.requests().get("a").await.expect("the request is kept");
    assert!(request.metadata.deletion_timestamp.is_some());

    // Visible again: the deletion goes on and destroys it.
    hide_vm(&h.sim, own, false);
    wait_gone(&h.requests(), "a").await;
    assert!(!h.vm_exists(own).await, "A's VM destroyed");
    h.stop().await;
}
