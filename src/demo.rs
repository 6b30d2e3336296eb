pub fn run(_k: Option<&std::path::Path>, _o: &mut dyn std::io::Write) -> crate::Result<crate::Outcome> { todo!() }
