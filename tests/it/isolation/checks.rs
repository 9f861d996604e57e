//! The checks of the isolation property: what each participant received, searched for
//! what is not theirs, and (so the checks are not vacuous) for what is.

use std::collections::HashSet;

use super::assert_none_of;
use super::world::{conversation_of, World};

/// What the run stored and who owns what, for the checks.
pub(super) struct Owned<'w> {
    world: &'w World,
    convs: Vec<Option<String>>,
    /// The markers that were stored.
    stored: HashSet<&'w str>,
    /// Replies refused as not_found: they must reach nobody.
    refused: Vec<(String, String)>,
    all_emails: Vec<String>,
}

impl<'w> Owned<'w> {
    /// What was stored: Bo works in both inboxes and never disconnects, so he received
    /// every stored message. (A send from a tab closed right after it may not have been
    /// read by the server at all.)
    pub(super) fn of(world: &'w World) -> Owned<'w> {
        let stored: HashSet<&str> = {
            let bo = world.agents[2].log.lock().expect("log");
            world
                .markers
                .iter()
                .filter(|(m, o)| o.is_some() && bo.iter().any(|f| f.contains(m.as_str())))
                .map(|(m, _)| m.as_str())
                .collect()
        };
        let owned = world.markers.iter().filter(|(_, o)| o.is_some()).count();
        assert!(
            stored.len() * 10 >= owned * 9,
            "only {} of {owned} messages were stored",
            stored.len()
        );
        Owned {
            world,
            convs: world
                .visitors
                .iter()
                .map(|v| conversation_of(&v.log))
                .collect(),
            stored,
            refused: world
                .markers
                .iter()
                .filter(|(_, o)| o.is_none())
                .map(|(m, _)| ("a refused reply".to_string(), m.clone()))
                .collect(),
            all_emails: world.emails(),
        }
    }

    /// What belongs to visitor `j`: their id, token, conversation and messages.
    fn about(&self, j: usize) -> Vec<(String, String)> {
        let v = &self.world.visitors[j];
        let mut n = vec![
            (format!("visitor {j}'s id"), v.id.clone()),
            (format!("visitor {j}'s token"), v.token.clone()),
        ];
        if let Some(c) = &self.convs[j] {
            n.push((format!("visitor {j}'s conversation"), c.clone()));
        }
        n.extend(
            self.world
                .markers
                .iter()
                .filter(|(_, o)| *o == Some(j))
                .map(|(m, _)| {
                    (
                        format!("a message of visitor {j}'s conversation"),
                        m.clone(),
                    )
                }),
        );
        n
    }

    fn contact_names(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.world
            .names
            .iter()
            .map(|n| ("a contact name".to_string(), n.clone()))
    }

    /// Visitor `i` saw nothing of anyone else's, no email they did not type, no contact
    /// name; was never closed; and did see their own stored messages.
    pub(super) fn check_visitor(&self, i: usize) {
        let w = self.world;
        let mut needles = self.refused.clone();
        for j in (0..w.visitors.len()).filter(|j| *j != i) {
            needles.extend(self.about(j));
        }
        needles.extend(
            self.all_emails
                .iter()
                .filter(|e| !w.typed[i].contains(*e))
                .map(|e| ("an email they did not type".to_string(), e.clone())),
        );
        needles.extend(self.contact_names());
        let log = w.visitors[i].log.lock().expect("log").clone();
        assert_none_of(&format!("visitor {i}"), &log, &needles);
        assert!(
            !log.iter().any(|f| f.starts_with("CLOSED")),
            "visitor {i} was closed"
        );
        // Not vacuous: they did see their own.
        for (m, _) in w
            .markers
            .iter()
            .filter(|(m, o)| *o == Some(i) && self.stored.contains(m.as_str()))
        {
            assert!(
                log.iter().any(|f| f.contains(m.as_str())),
                "visitor {i} never saw {m}"
            );
        }
    }

    /// Agent `g` saw nothing of a visitor outside its inboxes; was never closed; saw
    /// every stored message of its inboxes; and did ask for something it may not see.
    pub(super) fn check_agent(&self, g: usize) {
        let w = self.world;
        let a = &w.agents[g];
        let mut needles = self.refused.clone();
        for j in (0..w.visitors.len()).filter(|j| !a.inboxes.contains(&w.visitors[*j].inbox)) {
            needles.extend(
                self.about(j)
                    .into_iter()
                    .filter(|(what, _)| !what.contains("token")),
            );
        }
        let log = a.log.lock().expect("log").clone();
        assert_none_of(&format!("agent {g} of {:?}", a.inboxes), &log, &needles);
        assert!(
            !log.iter().any(|f| f.starts_with("CLOSED")),
            "agent {g} was closed"
        );
        for (m, o) in &w.markers {
            if o.is_some_and(|j| a.inboxes.contains(&w.visitors[j].inbox))
                && self.stored.contains(m.as_str())
            {
                assert!(
                    log.iter().any(|f| f.contains(m.as_str())),
                    "agent {g} never saw {m}"
                );
            }
        }
        assert!(
            log.iter().any(|f| f.contains("\"not_found\"")),
            "agent {g} never asked for something it may not see"
        );
    }

    /// The strangers saw nothing of anyone, and were welcomed as new visitors.
    pub(super) fn check_strangers(&self) {
        let w = self.world;
        let mut needles = self.refused.clone();
        for j in 0..w.visitors.len() {
            needles.extend(self.about(j));
        }
        needles.extend(
            self.all_emails
                .iter()
                .map(|e| ("an email".to_string(), e.clone())),
        );
        needles.extend(self.contact_names());
        let log = w.strangers.lock().expect("log").clone();
        assert_none_of("a stranger", &log, &needles);
        assert!(log.iter().filter(|f| f.contains("\"welcome\"")).count() >= 3);
    }
}
